// Command umptcp is the command line of umptcp, a userspace Multipath TCP
// (RFC 8684) stack:
//
//	umptcp <command> [flags] [arguments]
//
// Run "umptcp help" for the list of commands. Each command is a function
// over its arguments and standard streams that returns the exit status:
// 0 success, 1 the command ran but found a failure (a check that did not
// hold), 2 bad usage or an input it could not read.
package main

import (
	"fmt"
	"io"
	"os"
)

// Exit statuses shared by every command.
const (
	exitOK      = 0 // success
	exitFailure = 1 // the command ran and found a failure (e.g. a verification mismatch)
	exitUsage   = 2 // bad usage, or an input that could not be read
)

// command is one subcommand. run gets the arguments after the command name
// and returns the exit status; it prints its own usage for -h, --help and
// "umptcp help NAME" (run with the single argument "-h").
type command struct {
	name    string
	summary string
	run     func(args []string, stdin io.Reader, stdout, stderr io.Writer) int
}

// commands lists the subcommands, in the order "umptcp help" shows them.
// Adding a command is adding a line here.
var commands = []command{
	{"demo", "send data both ways over an emulated path and check every byte", runDemo},
	{"decode", "print and verify the MPTCP options of a pcap or pcapng capture", runDecode},
	{"connect", "netcat over MPTCP: connect through a TUN device, stdin and stdout", runConnect},
	{"listen", "netcat over MPTCP: accept on a TUN device (one, or --keep many)", runListen},
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run dispatches to the command named by args[0].
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	name, rest := args[0], args[1:]
	switch name {
	case "help", "-h", "-help", "--help":
		if len(rest) == 0 {
			usage(stdout)
			return exitOK
		}
		if c := lookup(rest[0]); c != nil {
			return c.run([]string{"-h"}, stdin, stdout, stderr)
		}
		fmt.Fprintf(stderr, "umptcp help: unknown command %q\n", rest[0])
		usage(stderr)
		return exitUsage
	}
	if c := lookup(name); c != nil {
		return c.run(rest, stdin, stdout, stderr)
	}
	fmt.Fprintf(stderr, "umptcp: unknown command %q\n", name)
	usage(stderr)
	return exitUsage
}

func lookup(name string) *command {
	for i := range commands {
		if commands[i].name == name {
			return &commands[i]
		}
	}
	return nil
}

func usage(w io.Writer) {
	fmt.Fprint(w, `umptcp: a userspace Multipath TCP (RFC 8684) stack and its tools.

Usage:
  umptcp <command> [flags] [arguments]

Commands:
`)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "  %-10s %s\n", "help", "show the usage of umptcp or of a command")
	fmt.Fprint(w, `
Run "umptcp help <command>" or "umptcp <command> -h" for a command's flags.

Exit status: 0 success, 1 the command found a failure (such as a mismatch
reported by "decode --verify"), 2 bad usage or unreadable input.
`)
}
