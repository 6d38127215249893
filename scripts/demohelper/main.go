package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/connectsoft/marketplace/index/client"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: demohelper freeport | json PATH < DOC | late-installs --index URL --name N --version V --digest D --quantity Q")
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

// closeGrace is billing.DefaultGrace: a month closes that long after it
// ended. Not imported, to keep this helper quick to build.
const closeGrace = 5 * time.Minute

// lateInstalls reports, with MKT_INDEX_TOKEN's tenant, quantity installs
// of the version on the last day of the last month that can be closed now
// (it ended more than the close grace ago), as Factory does through
// index/client when it was offline and its report arrives late. It prints
// that month, YYYY-MM.
func lateInstalls(args []string) error {
	f := flag.NewFlagSet("late-installs", flag.ContinueOnError)
	idx := f.String("index", "", "index URL")
	name := f.String("name", "", "publisher/name")
	version := f.String("version", "", "version")
	digest := f.String("digest", "", "the version's digest (the index refuses a report about other bytes)")
	quantity := f.Int64("quantity", 1, "installs")
	if err := f.Parse(args); err != nil {
		return err
	}
	now := time.Now().UTC()
	month := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	if now.Before(month.Add(closeGrace + time.Minute)) {
		month = month.AddDate(0, -1, 0) // the last month ended moments ago: it cannot close yet
	}
	at := month.Add(-12 * time.Hour) // the middle of the last day of the month before
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
	fmt.Println(at.Format("2006-01"))
	return nil
}
