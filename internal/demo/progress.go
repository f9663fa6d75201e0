package demo

import (
	"fmt"
	"io"
	"time"
)

// Progress is one progress report.
type Progress struct {
	Elapsed time.Duration
	// Bytes received so far each way.
	Up, Down int64
	// Rates over the last second or so, in bits per second.
	UpRate, DownRate float64
	Subflows         int
	MPTCP            bool
}

// String renders p on one line that fits an 80-column terminal:
//
//	1.5s  up 1.84 Gbit/s  45.2 MB  down 1.79 Gbit/s  44.0 MB  MPTCP, 1 subflow
func (p Progress) String() string {
	mode := "MPTCP"
	if !p.MPTCP {
		mode = "TCP" // fell back
	}
	s := "s"
	if p.Subflows == 1 {
		s = ""
	}
	el := fmt.Sprintf("%5.1fs", p.Elapsed.Seconds())
	if p.Elapsed >= 1000*time.Second {
		el = fmt.Sprintf("%5.0fs", p.Elapsed.Seconds())
	}
	return fmt.Sprintf("%s  up %11s %8s  down %11s %8s  %s, %d subflow%s",
		el, FormatRate(p.UpRate), FormatBytes(p.Up),
		FormatRate(p.DownRate), FormatBytes(p.Down), mode, p.Subflows, s)
}

// rateWindow is how far back the rates of a report look.
const rateWindow = time.Second

type sample struct {
	t        time.Time
	up, down int64
}

// report writes a progress report every interval until done is closed. In
// the live style it redraws one line (carriage return, erase to the end of
// the line) and erases it at the end, so the summary starts on a clean line.
func (r *run) report(done <-chan struct{}) {
	w := r.cfg.Progress
	tick := time.NewTicker(r.cfg.ProgressInterval)
	defer tick.Stop()
	hist := []sample{{t: r.start}}
	for {
		select {
		case <-done:
			if r.cfg.ProgressStyle == ProgressLive {
				io.WriteString(w, "\r\x1b[K")
			}
			return
		case now := <-tick.C:
			s := sample{now, r.server.received.Load(), r.client.received.Load()}
			hist = append(hist, s)
			for len(hist) > 2 && now.Sub(hist[1].t) >= rateWindow {
				hist = hist[1:]
			}
			old := hist[0]
			dt := now.Sub(old.t)
			info := r.client.conn.Info()
			p := Progress{
				Elapsed: now.Sub(r.start),
				Up:      s.up, Down: s.down,
				UpRate:   rate(s.up-old.up, dt),
				DownRate: rate(s.down-old.down, dt),
				Subflows: len(info.Subflows),
				MPTCP:    info.MPTCP,
			}
			if r.cfg.ProgressStyle == ProgressLive {
				fmt.Fprintf(w, "\r%s\x1b[K", p)
			} else {
				fmt.Fprintln(w, p)
			}
		}
	}
}
