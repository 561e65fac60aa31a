// Command gen writes the triage benchmark's capture: a pcap file of mixed,
// deterministic synthetic traffic (pcapgen.WriteMixed) until the file
// reaches the size asked. Nothing is sent anywhere: the packets are built in
// memory.
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/tripcap/tripcap/internal/pcapgen"
)

func main() {
	out := flag.String("o", "", "the pcap file to write")
	size := flag.Int64("size", 1<<30, "stop once the file holds this many bytes")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "gen: -o is required")
		os.Exit(2)
	}
	if err := run(*out, *size); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(path string, size int64) error {
	w, err := pcapgen.Create(path, time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC))
	if err != nil {
		return err
	}
	if err := pcapgen.WriteMixed(w, size); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}
