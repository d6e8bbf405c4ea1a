// Package bench measures the per-call cost and the resilience of
// github.com/resilienthttp/resilient side by side with the libraries a user
// would pick instead: hashicorp/go-retryablehttp, failsafe-go,
// gojek/heimdall and go-resty/resty (v2), with the bare http.Transport as
// the baseline.
//
// The package has no API: everything lives in its benchmarks and their test
// helpers. It is a module of its own so that the peers never enter the
// library's go.mod. Run all workloads with run.sh; README.md keeps the
// latest figures and says how each workload is built.
package bench
