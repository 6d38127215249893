package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/connectsoft/marketplace/index/client"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: demohelper freeport | json PATH < DOC | get URL | dates | late-installs --index URL --period YYYY-MM --name N --version V --digest D --quantity Q")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "freeport":
		err = freePort()
	case "json":
		if len(os.Args) != 3 {
			err = errors.New("json PATH: one path, such as items.0.name")
			break
		}
		err = jsonField(os.Stdin, os.Args[2])
	case "get":
		if len(os.Args) != 3 {
			err = errors.New("get URL: one URL")
			break
		}
		err = get(os.Args[2])
	case "dates":
		dates(time.Now().UTC())
	case "late-installs":
		err = lateInstalls(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "demohelper:", err)
		os.Exit(1)
	}
}

// get prints the body of an anonymous GET of url, which must answer 200:
// the index's API as anyone sees it, without curl on the machine.
func get(url string) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	_, err = io.Copy(os.Stdout, resp.Body)
	return err
}

// freePort prints a port of 127.0.0.1 that was free a moment ago (the
// demo retries with another if something takes it first).
func freePort() error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer l.Close()
	fmt.Println(l.Addr().(*net.TCPAddr).Port)
	return nil
}

// jsonField prints the value at path (dot-separated keys and array
// indexes; "length" of an array or object is its size): a string as it
// is, anything else as JSON. A missing field is an error.
func jsonField(r io.Reader, path string) error {
	var v any
	if err := json.NewDecoder(r).Decode(&v); err != nil {
		return fmt.Errorf("json %s: the input is no JSON document: %w", path, err)
	}
	for _, k := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			if k == "length" {
				if _, ok := x[k]; !ok {
					v = float64(len(x))
					continue
				}
			}
			f, ok := x[k]
			if !ok {
				return fmt.Errorf("json %s: no field %q", path, k)
			}
			v = f
		case []any:
			if k == "length" {
				v = float64(len(x))
				continue
			}
			i, err := strconv.Atoi(k)
			if err != nil || i < 0 || i >= len(x) {
				return fmt.Errorf("json %s: no element %q of an array of %d", path, k, len(x))
			}
			v = x[i]
		default:
			return fmt.Errorf("json %s: %q is inside a %T, not an object or array", path, k, v)
		}
	}
	if s, ok := v.(string); ok {
		fmt.Println(s)
		return nil
	}
	b, _ := json.Marshal(v)
	fmt.Println(string(b))
	return nil
}

// dates prints, on one line, what the demo dates things by (GNU date's -d
// is not everywhere): this month, the last month that can be closed now
// (the one before last in the first minutes of a month, which closes
// only after billing's grace), and a time 30 days from now.
func dates(now time.Time) {
	month := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	closable := month.AddDate(0, -1, 0)
	if now.Before(month.Add(closeGrace + time.Minute)) {
		closable = month.AddDate(0, -2, 0)
	}
	fmt.Println(month.Format("2006-01"), closable.Format("2006-01"), now.AddDate(0, 0, 30).Format(time.RFC3339))
}

// closeGrace is billing.DefaultGrace: a month closes that long after it
// ended. Not imported, to keep this helper quick to build.
const closeGrace = 5 * time.Minute

// lateInstalls reports, with MKT_INDEX_TOKEN's tenant, quantity installs
// of the version dated in the middle of period, as Factory does through
// index/client when it was offline and its report arrives late.
func lateInstalls(args []string) error {
	f := flag.NewFlagSet("late-installs", flag.ContinueOnError)
	idx := f.String("index", "", "index URL")
	period := f.String("period", "", "the month the installs happened in, YYYY-MM")
	name := f.String("name", "", "publisher/name")
	version := f.String("version", "", "version")
	digest := f.String("digest", "", "the version's digest (the index refuses a report about other bytes)")
	quantity := f.Int64("quantity", 1, "installs")
	if err := f.Parse(args); err != nil {
		return err
	}
	month, err := time.Parse("2006-01", *period)
	if err != nil {
		return fmt.Errorf("--period %q: want YYYY-MM", *period)
	}
	at := month.AddDate(0, 0, 14) // the 15th, midnight UTC
	ev := client.NewInstallEvent("urn:connectsoft:marketplace:demo-factory", *name, *version, *digest)
	ev.Time, ev.Data.Quantity = at, *quantity
	c := &client.Client{URL: *idx, Token: os.Getenv("MKT_INDEX_TOKEN")}
	rep, err := c.ReportUsage(context.Background(), []client.UsageEvent{ev})
	if err != nil {
		return err
	}
	if rep.Accepted != 1 {
		b, _ := json.Marshal(rep)
		return fmt.Errorf("the index did not count the install report: %s", b)
	}
	return nil
}
