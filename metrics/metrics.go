// Package metrics exports the counters of rtcmesh's components (a node, the signaling server,
// the TURN relay) as Prometheus metrics, and answers the operational endpoints every command
// serves the same way: /healthz (Healthz), /readyz (Readyz, Readiness) and, for the commands
// whose main protocol is not HTTP, a Server holding /metrics and both.
//
// Each collector reads its component's Stats at scrape time, so nothing is counted twice and
// the components stay free of any Prometheus dependency. Nothing registers itself globally:
// every command builds its own registry with NewRegistry, so two nodes in one process (or one
// test) never share metrics.
package metrics

import (
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// namespace prefixes every family this package defines.
const namespace = "rtcmesh"

// NewRegistry returns a registry holding the Go runtime and process collectors and cs.
// Registration fails when two collectors describe the same family.
func NewRegistry(cs ...prometheus.Collector) (*prometheus.Registry, error) {
	reg := prometheus.NewRegistry()
	all := append([]prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	}, cs...)
	for _, c := range all {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: registering a collector: %w", err)
		}
	}
	return reg, nil
}

// Handler serves reg in the Prometheus exposition format. A collector error is reported in
// the response (HTTP 500) rather than silently dropping families.
func Handler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError})
}

// newDesc builds a family description in the rtcmesh namespace.
func newDesc(subsystem, name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(namespace, subsystem, name), help, labels, nil)
}

// counter and gauge build one sample; the descriptions and labels are this package's own, so
// a mismatch is a programming error caught by the tests, and MustNewConstMetric is safe.
func counter(d *prometheus.Desc, v uint64, labels ...string) prometheus.Metric {
	return prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
}

func gauge(d *prometheus.Desc, v float64, labels ...string) prometheus.Metric {
	return prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}
