package index

import (
	"context"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the index's Prometheus metrics, on a registry of their own
// so that several servers (tests) can live in one process.
type Metrics struct {
	Registry *prometheus.Registry
	Events   *prometheus.CounterVec
	Ingests  *prometheus.CounterVec
	// IngestLag is how long after the registry's event a version was
	// stored: the figure that says whether a push is searchable in a second.
	IngestLag *prometheus.HistogramVec
	Requests  *prometheus.HistogramVec
	// Usage counts usage events by type (pull, install, seats) and
	// outcome (accepted, duplicate, refused).
	Usage *prometheus.CounterVec
}

// NewMetrics registers the metrics, with Go and process collectors.
func NewMetrics() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		Events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mkt_index_webhook_events_total", Help: "Registry notification events received, by outcome.",
		}, []string{"outcome"}),
		Ingests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mkt_index_ingests_total", Help: "Versions ingested, by how (webhook or crawl) and result.",
		}, []string{"via", "result"}),
		IngestLag: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "mkt_index_ingest_lag_seconds", Help: "Time from a registry event to the version being stored.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"via"}),
		Requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "mkt_index_http_request_duration_seconds", Help: "API request latency, by route and status.",
			Buckets: []float64{.001, .0025, .005, .01, .02, .05, .1, .25, .5, 1},
		}, []string{"route", "status"}),
		Usage: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mkt_index_usage_events_total", Help: "Usage events (registry pulls, install and seat reports), by type and outcome.",
		}, []string{"type", "outcome"}),
	}
	m.Registry.MustRegister(m.Events, m.Ingests, m.IngestLag, m.Requests, m.Usage,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// queueBacklog exports q's backlog, the events queued on every replica
// and not yet ingested or quarantined, as mkt_index_queue_pending: the
// figure an operator alerts on when ingest falls behind the pushes. It is
// counted when scraped, within 2 s.
func (m *Metrics) queueBacklog(q *Queue) {
	m.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "mkt_index_queue_pending", Help: "Registry events queued and not yet ingested or quarantined, on every replica.",
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		n, err := q.Pending(ctx)
		if err != nil {
			return math.NaN() // unknown, not zero: the database did not answer
		}
		return float64(n)
	}))
}

// Handler serves /metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})
}

func (m *Metrics) observeRequest(route string, status int, d time.Duration) {
	if m != nil {
		m.Requests.WithLabelValues(route, strconv.Itoa(status)).Observe(d.Seconds())
	}
}

func (m *Metrics) event(outcome string) {
	if m != nil {
		m.Events.WithLabelValues(outcome).Inc()
	}
}

func (m *Metrics) ingest(via, result string, since time.Time) {
	if m == nil {
		return
	}
	m.Ingests.WithLabelValues(via, result).Inc()
	if !since.IsZero() && result == "stored" {
		m.IngestLag.WithLabelValues(via).Observe(time.Since(since).Seconds())
	}
}
