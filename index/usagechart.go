package index

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/connectsoft/marketplace/index/store"
)

// chartDays is how many days the extension page's usage chart covers,
// today (UTC) included.
const chartDays = 90

// The chart's geometry in SVG user units: a plot area right of the y-axis
// labels and above the x-axis labels; each day gets a slot with a pulls
// bar and an installs bar side by side.
const (
	chartLeft   = 48
	chartTop    = 8
	chartSlot   = 8
	chartBar    = 3
	chartHeight = 160
	chartWidth  = chartLeft + chartDays*chartSlot + 8
	chartBottom = chartTop + chartHeight
)

// UsageChart is the extension page's usage of the last chartDays days, as
// the viewer may see it (usageRows), laid out for an inline SVG: the page
// draws it without JavaScript, and the numbers are in its title and in a
// table for screen readers.
type UsageChart struct {
	// Shown is false when the viewer may see no usage at all (no token);
	// Reason then says why, for the page.
	Shown  bool
	Reason string
	// Empty is true when there was no usage in the period: the page says
	// so rather than drawing a chart of zeros.
	Empty           bool
	From, To        string
	Pulls, Installs int64
	// PullsText and InstallsText are the totals as the page writes them.
	PullsText, InstallsText string
	Days                    []ChartDay
	// Ticks are the y-axis' gridlines, from 0 to the scale's top.
	Ticks                []ChartTick
	Width, Height, Left  int
	Right, Bottom, Top   int
	Label                string
	XLabels              []ChartTick
	ActiveDays, MaxValue int64
}

// ChartDay is one day's bars; a day without usage has zero-height bars on
// the baseline.
type ChartDay struct {
	Date                  string
	Pulls, Installs       int64
	X, InstallX           int
	PullsY, PullsH        float64
	InstallsY, InstallsH  float64
	PullsText, InstallsTx string
}

// ChartTick is a gridline or axis label at Pos (y for the y-axis, x for the
// x-axis).
type ChartTick struct {
	Pos  float64
	Text string
}

// usageChart reads the usage of extension name over the last chartDays
// days (one aggregate query) and lays it out; nil when the index meters
// no usage.
func (wb *Web) usageChart(r *http.Request, name string, now time.Time) (*UsageChart, error) {
	today := now.UTC().Truncate(24 * time.Hour)
	// The publisher too, so the store reads its key's prefix
	// (publisher, name) rather than every row of the period.
	publisher, _, _ := strings.Cut(name, "/")
	from := today.AddDate(0, 0, -(chartDays - 1))
	rows, err := wb.API.usageRows(r, store.UsageQuery{Publisher: publisher, Name: name, From: from, To: today.AddDate(0, 0, 1), Granularity: store.Daily, PerExtension: true})
	var ae *apiError
	switch {
	case errors.As(err, &ae) && ae.status == http.StatusNotImplemented:
		return nil, nil // an index without metering has no usage to show
	case errors.As(err, &ae) && ae.status == http.StatusUnauthorized:
		return &UsageChart{Reason: ae.msg}, nil
	}
	if err != nil {
		return nil, err
	}
	return layoutUsage(name, from, rows), nil
}

// layoutUsage sums rows (any tenant, version) per day from from on, for
// chartDays days, and places the bars; missing days are zero.
func layoutUsage(name string, from time.Time, rows []store.UsageRow) *UsageChart {
	c := &UsageChart{Shown: true, Width: chartWidth, Height: chartBottom + 22, Left: chartLeft, Right: chartLeft + chartDays*chartSlot,
		Bottom: chartBottom, Top: chartTop, Days: make([]ChartDay, chartDays)}
	index := make(map[string]int, chartDays)
	for i := range c.Days {
		d := from.AddDate(0, 0, i).Format(time.DateOnly)
		c.Days[i].Date = d
		index[d] = i
	}
	c.From, c.To = c.Days[0].Date, c.Days[chartDays-1].Date
	for _, u := range rows {
		i, ok := index[u.Period]
		if !ok {
			continue
		}
		c.Days[i].Pulls += u.Pulls
		c.Days[i].Installs += u.Installs
	}
	var peak ChartDay
	for _, d := range c.Days {
		c.Pulls += d.Pulls
		c.Installs += d.Installs
		c.MaxValue = max(c.MaxValue, d.Pulls, d.Installs)
		if d.Pulls+d.Installs > 0 {
			c.ActiveDays++
		}
		if d.Pulls+d.Installs > peak.Pulls+peak.Installs {
			peak = d
		}
	}
	if c.Pulls+c.Installs == 0 {
		c.Empty = true
		return c
	}
	c.PullsText, c.InstallsText = count(c.Pulls), count(c.Installs)
	top, step := niceScale(c.MaxValue)
	y := func(v int64) float64 { return float64(chartBottom) - float64(v)*chartHeight/float64(top) }
	for v := int64(0); v <= top; v += step {
		c.Ticks = append(c.Ticks, ChartTick{Pos: y(v), Text: count(v)})
	}
	for i := range c.Days {
		d := &c.Days[i]
		d.X = chartLeft + i*chartSlot + 1
		d.InstallX = d.X + chartBar
		d.PullsY, d.InstallsY = y(d.Pulls), y(d.Installs)
		d.PullsH, d.InstallsH = chartBottom-d.PullsY, chartBottom-d.InstallsY
		d.PullsText, d.InstallsTx = count(d.Pulls), count(d.Installs)
		if i%30 == 0 || i == chartDays-1 {
			c.XLabels = append(c.XLabels, ChartTick{Pos: float64(d.X), Text: d.Date})
		}
	}
	c.Label = fmt.Sprintf("Usage of %s from %s to %s: %s %s and %s %s in total, on %d of %d days; the busiest day was %s with %s %s and %s %s.",
		name, c.From, c.To, count(c.Pulls), plural(c.Pulls, "pull"), count(c.Installs), plural(c.Installs, "install"),
		c.ActiveDays, chartDays, peak.Date, count(peak.Pulls), plural(peak.Pulls, "pull"), count(peak.Installs), plural(peak.Installs, "install"))
	return c
}

// niceScale is the y-axis' top and step for a largest value m: a step of
// 1, 2 or 5 times a power of ten giving at most five intervals, so the
// labels are round numbers.
func niceScale(m int64) (top, step int64) {
	if m <= 0 {
		return 1, 1
	}
	step = 1
	for {
		for _, f := range []int64{1, 2, 5} {
			if s := step * f; (m+s-1)/s <= 5 {
				return (m + s - 1) / s * s, s
			}
		}
		if step > math.MaxInt64/100 {
			return m, m
		}
		step *= 10
	}
}

// count writes n with thousands separators (12,345).
func count(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func plural(n int64, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}
