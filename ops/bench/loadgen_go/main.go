// An open-loop HTTP load generator: request i is sent at t0 + i/rate whether or not earlier
// ones have come back, and its latency is counted from that scheduled time (no coordinated
// omission). The same measurement as ops/bench/loadgen.py, at a fraction of its CPU, so the
// server under test keeps the cores it would have in production.
//
//	loadgen URL BODIES RATE DURATION [DEADLINE_MS]
//
// BODIES: 4-byte big-endian length, then the body (a JSON object), repeated. With DEADLINE_MS,
// each body gets "deadline": its scheduled send time plus DEADLINE_MS (Unix seconds), as an ad
// server in an auction would send it.
//
// Prints one JSON object: offered_rps, achieved_rps, p50_ms, p99_ms, p999_ms, p99_ok_ms (over
// the 200s), errors (not 200), shed (503s), late (200s answered after their deadline),
// requests.
package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"sort"
	"strconv"
	"sync"
	"time"
)

func readBodies(path string) ([][]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out [][]byte
	for len(data) >= 4 {
		n := binary.BigEndian.Uint32(data[:4])
		if int(n) > len(data)-4 {
			return nil, fmt.Errorf("truncated bodies file")
		}
		out = append(out, data[4:4+n])
		data = data[4+n:]
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no bodies in %s", path)
	}
	return out, nil
}

func percentile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	if i < 0 {
		i = 0
	}
	return sorted[i]
}

func round3(x float64) float64 { return math.Round(x*1000) / 1000 }

func main() {
	if len(os.Args) != 5 && len(os.Args) != 6 {
		fmt.Fprintln(os.Stderr, "usage: loadgen URL BODIES RATE DURATION [DEADLINE_MS]")
		os.Exit(2)
	}
	url := os.Args[1]
	bodies, err := readBodies(os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	rate, err1 := strconv.ParseFloat(os.Args[3], 64)
	duration, err2 := strconv.ParseFloat(os.Args[4], 64)
	if err1 != nil || err2 != nil || rate <= 0 || duration <= 0 {
		fmt.Fprintln(os.Stderr, "RATE and DURATION must be positive numbers")
		os.Exit(2)
	}
	deadlineMs := 0.0
	if len(os.Args) == 6 {
		d, err := strconv.ParseFloat(os.Args[5], 64)
		if err != nil || d <= 0 {
			fmt.Fprintln(os.Stderr, "DEADLINE_MS must be a positive number")
			os.Exit(2)
		}
		deadlineMs = d
	}
	budget := time.Duration(deadlineMs * float64(time.Millisecond))
	n := int(rate * duration)
	client := &http.Client{
		Transport: &http.Transport{MaxIdleConns: 0, MaxIdleConnsPerHost: 4096,
			DisableCompression: true},
		Timeout: 60 * time.Second,
	}
	lat := make([]float64, n)
	ok := make([]bool, n)
	status := make([]int, n)
	var wg sync.WaitGroup
	t0 := time.Now().Add(200 * time.Millisecond)
	for i := 0; i < n; i++ {
		scheduled := t0.Add(time.Duration(float64(i) / rate * float64(time.Second)))
		if d := time.Until(scheduled); d > 0 {
			time.Sleep(d)
		}
		wg.Add(1)
		go func(i int, scheduled time.Time) {
			defer wg.Done()
			body := bodies[i%len(bodies)]
			if budget > 0 { // {"deadline": T, ...the body's own fields}
				at := float64(scheduled.Add(budget).UnixNano()) / 1e9
				body = append([]byte(fmt.Sprintf(`{"deadline":%.6f,`, at)), body[1:]...)
			}
			resp, err := client.Post(url, "application/json", bytes.NewReader(body))
			if err == nil {
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				ok[i] = err == nil && resp.StatusCode == http.StatusOK
				status[i] = resp.StatusCode
			}
			lat[i] = float64(time.Since(scheduled)) / float64(time.Millisecond)
		}(i, scheduled)
	}
	wg.Wait()
	elapsed := time.Since(t0).Seconds()
	// every request's latency counts (a 503 is an answer too, and a fast one), but only
	// 200s count as achieved: a replica shedding load does not achieve what it sheds
	errors, shed, late := 0, 0, 0
	done := make([]float64, 0, n)
	answered := make([]float64, 0, n)
	for i := range lat {
		if !ok[i] {
			errors++
			if status[i] == http.StatusServiceUnavailable {
				shed++
			}
		} else {
			answered = append(answered, lat[i])
			if budget > 0 && lat[i] > deadlineMs {
				late++
			}
		}
		done = append(done, lat[i])
	}
	sort.Float64s(done)
	sort.Float64s(answered)
	var p99ok any // null where nothing was answered 200
	if len(answered) > 0 {
		p99ok = round3(percentile(answered, 0.99))
	}
	out := map[string]any{
		"offered_rps": rate, "achieved_rps": math.Round(float64(n-errors)/elapsed*10) / 10,
		"p50_ms": round3(percentile(done, 0.50)), "p99_ms": round3(percentile(done, 0.99)),
		"p999_ms": round3(percentile(done, 0.999)), "errors": errors, "requests": n,
		"p99_ok_ms": p99ok, "shed": shed, "late": late,
	}
	enc := json.NewEncoder(os.Stdout)
	if err := enc.Encode(out); err != nil {
		os.Exit(1)
	}
}
