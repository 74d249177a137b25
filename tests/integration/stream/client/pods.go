// Scenarios against a real quarkd with real pods (tests/e2e/stream): the
// URLs come from quarkd's Exec/Attach/PortForward RPCs through the quark
// CLI's --url mode, and the sessions run in busybox containers in KVM.
package main

import (
	"bufio"
	"fmt"
	"io/ioutil"
	"net"
	"net/http"
	"os/exec"
	"sort"
	"strings"
	"time"

	"github.com/gorilla/websocket"
)

type podsEnv struct {
	quark   string // the quark CLI
	pod     string // pod id
	cid     string // a running container (sh loop)
	attach  string // a container running cat with stdin and StdinOnce
	ttyCid  string // a container running sh with a tty, stdin and StdinOnce ("-": none)
	webPort int    // busybox httpd's port inside the pod
	tty     bool   // the runtime supports tty exec
}

var pe podsEnv

// quarkURL runs `quark ARGS` (with --url) and returns the URL it prints.
func quarkURL(args ...string) (string, error) {
	out, err := exec.Command(pe.quark, args...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("quark %s: %v: %s", strings.Join(args, " "), err, out)
	}
	u := strings.TrimSpace(string(out))
	if !strings.HasPrefix(u, "http://") {
		return "", fmt.Errorf("quark %s printed %q", strings.Join(args, " "), u)
	}
	return u, nil
}

func podExecURL(in, tty bool, cmd ...string) (string, error) {
	args := []string{"exec", "--url"}
	if in {
		args = append(args, "-i")
	}
	if tty {
		args = append(args, "-t")
	}
	return quarkURL(append(append(args, pe.cid, "--"), cmd...)...)
}

func podHello(run runner) error {
	u, err := podExecURL(false, false, "echo", "-n", "hello")
	if err != nil {
		return err
	}
	r, err := run(u, execOpts{stdout: true, stderr: true, noPong: true})
	if err != nil {
		return err
	}
	if r.stdout != "hello" || r.stderr != "" {
		return fmt.Errorf("stdout %q stderr %q", r.stdout, r.stderr)
	}
	return wantSuccess(r.status)
}

func podExitCode(run runner) error {
	u, err := podExecURL(false, false, "sh", "-c", "echo oops >&2; exit 3")
	if err != nil {
		return err
	}
	r, err := run(u, execOpts{stdout: true, stderr: true, noPong: true})
	if err != nil {
		return err
	}
	if r.stderr != "oops\n" || r.stdout != "" {
		return fmt.Errorf("stdout %q stderr %q", r.stdout, r.stderr)
	}
	return wantExit(r.status, "3")
}

func podStdin(run runner) error {
	u, err := podExecURL(true, false, "sh", "-c", "read x; echo got:$x; cat")
	if err != nil {
		return err
	}
	data := strings.Repeat("0123456789abcdef", 4096) // 64 KiB after the line
	r, err := run(u, execOpts{stdin: true, stdout: true, stderr: true, input: "abc\n" + data})
	if err != nil {
		return err
	}
	if r.stdout != "got:abc\n"+data {
		return fmt.Errorf("stdout: %d bytes, starts %q", len(r.stdout), r.stdout[:min(len(r.stdout), 40)])
	}
	return wantSuccess(r.status)
}

func podExitWithStdinOpen(run runner) error {
	u, err := podExecURL(true, false, "sh", "-c", "echo bye; exit 7")
	if err != nil {
		return err
	}
	r, err := run(u, execOpts{stdin: true, stdout: true, stderr: true, keepOpen: true, noPong: true})
	if err != nil {
		return err
	}
	if r.stdout != "bye\n" {
		return fmt.Errorf("stdout %q", r.stdout)
	}
	return wantExit(r.status, "7")
}

// podTTY: with required false, a sandbox running each exec in a VM of its
// own may refuse the terminal (a Failure status naming the pod VM mode).
func podTTY(run runner, required bool) error {
	u, err := podExecURL(true, true, "sh", "-c", "read x; echo got:$x; stty size; [ -t 0 ] && echo isatty; echo viatty >/dev/tty")
	if err != nil {
		return err
	}
	r, err := run(u, execOpts{tty: true, stdin: true, stdout: true, keepOpen: true,
		input: "abc\n", resize: `{"Width":100,"Height":40}` + "\n", noPong: !required})
	if err != nil {
		return err
	}
	if !required && strings.Contains(r.status, "pod VM mode") {
		fmt.Printf("     (tty refused: this sandbox runs each exec in a VM of its own)\n")
		return nil
	}
	// The terminal echoes the line (abc\r\n) and maps \n to \r\n on output.
	for _, w := range []string{"abc\r\n", "got:abc\r\n", "40 100\r\n", "isatty\r\n", "viatty\r\n"} {
		if !strings.Contains(r.stdout, w) {
			return fmt.Errorf("stdout %q lacks %q", r.stdout, w)
		}
	}
	return wantSuccess(r.status)
}

func podAttach(run runner) error {
	u, err := quarkURL("attach", "--url", "-i", pe.attach)
	if err != nil {
		return err
	}
	r, err := run(u, execOpts{stdin: true, stdout: true, stderr: true, input: "ping\n"})
	if err != nil {
		return err
	}
	if r.stdout != "ping\n" {
		return fmt.Errorf("stdout %q", r.stdout)
	}
	if err := wantSuccess(r.status); err != nil {
		return err
	}
	// StdinOnce: the client's stdin close was cat's EOF, so it exited.
	deadline := time.Now().Add(15 * time.Second)
	for {
		out, _ := exec.Command(pe.quark, "ps", "-a").CombinedOutput()
		for _, l := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(l, pe.attach[:12]) && strings.Contains(l, "Exited") {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("StdinOnce: the attached cat did not exit: %s", out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// VINTR reaches the foreground group (the shell, whose trap prints INT),
// then VEOF on an empty line ends each read with end of file.
func podTTYSignals(run runner, required bool) error {
	u, err := podExecURL(true, true, "sh", "-c", "trap 'echo INT' INT; read x; echo rc=$?; read y; echo eof=$?")
	if err != nil {
		return err
	}
	// The input waits a moment: a ^C that came before the shell ran trap
	// would end it (its SIGINT still has the default action), as on Linux.
	r, err := run(u, execOpts{tty: true, stdin: true, stdout: true, keepOpen: true,
		input: "ab\x03\x04\x04", inputDelay: 1500 * time.Millisecond, noPong: !required})
	if err != nil {
		return err
	}
	if !required && strings.Contains(r.status, "pod VM mode") {
		return nil
	}
	for _, w := range []string{"^C", "INT\r\n", "eof=1\r\n"} {
		if !strings.Contains(r.stdout, w) {
			return fmt.Errorf("stdout %q lacks %q", r.stdout, w)
		}
	}
	return wantSuccess(r.status)
}

// The container's shell on its terminal: a resize, a command line, exit 7;
// the attach ends with the container, whose log has the terminal's output.
func podAttachTTY(run runner) error {
	u, err := quarkURL("attach", "--url", "-i", "-t", pe.ttyCid)
	if err != nil {
		return err
	}
	r, err := run(u, execOpts{tty: true, stdin: true, stdout: true, keepOpen: true,
		input: "echo $((6*7)); stty size; exit 7\n", resize: `{"Width":100,"Height":40}` + "\n"})
	if err != nil {
		return err
	}
	for _, w := range []string{"echo $((6*7)); stty size; exit 7\r\n", "42\r\n", "40 100\r\n"} {
		if !strings.Contains(r.stdout, w) {
			return fmt.Errorf("stdout %q lacks %q", r.stdout, w)
		}
	}
	if err := wantSuccess(r.status); err != nil {
		return err
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		out, _ := exec.Command(pe.quark, "ps", "-a").CombinedOutput()
		done := false
		for _, l := range strings.Split(string(out), "\n") {
			done = done || strings.HasPrefix(l, pe.ttyCid[:12]) && strings.Contains(l, "Exited")
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the tty container did not exit: %s", out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	logs, err := exec.Command(pe.quark, "logs", pe.ttyCid).CombinedOutput()
	if err != nil || !strings.Contains(string(logs), "42") {
		return fmt.Errorf("quark logs: %v %q", err, logs)
	}
	return nil
}

// ^C while nobody reads the terminal (the shell waits for sleep): the
// terminal's input timer still signals the foreground group.
func podTTYInterruptSleep(run runner, required bool) error {
	u, err := podExecURL(true, true, "sh", "-c", "trap 'echo INT' INT; sleep 8; echo after")
	if err != nil {
		return err
	}
	t0 := time.Now()
	r, err := run(u, execOpts{tty: true, stdin: true, stdout: true, keepOpen: true,
		input: "\x03", inputDelay: 1500 * time.Millisecond, noPong: !required})
	if err != nil {
		return err
	}
	if !required && strings.Contains(r.status, "pod VM mode") {
		return nil
	}
	if el := time.Since(t0); el > 6*time.Second {
		return fmt.Errorf("sleep was not interrupted (%v): stdout %q", el, r.stdout)
	}
	for _, w := range []string{"^C", "INT\r\n", "after\r\n"} {
		if !strings.Contains(r.stdout, w) {
			return fmt.Errorf("stdout %q lacks %q", r.stdout, w)
		}
	}
	return wantSuccess(r.status)
}

func pfGetPath(sc *spdyConn, port int, reqid, path string) (string, string, error) {
	req := fmt.Sprintf("GET %s HTTP/1.0\r\nHost: pod\r\n\r\n", path)
	code, body, e, err := pfRequest(sc, port, reqid, req, 10*time.Second)
	if err != nil || code == 0 {
		return "", e, err
	}
	return fmt.Sprintf("%d %s", code, strings.TrimSpace(body)), e, nil
}

func podPortForward() error {
	u, err := quarkURL("port-forward", "--url", pe.pod, fmt.Sprint(pe.webPort))
	if err != nil {
		return err
	}
	sc, err := pfUpgrade(u)
	if err != nil {
		return err
	}
	defer sc.conn.Close()
	err = pfParallel(4, func(i int) error {
		got, e, err := pfGetPath(sc, pe.webPort, fmt.Sprint(i), "/index.html")
		if err == nil && (got != "200 pod-ok" || e != "") {
			err = fmt.Errorf("request %d: got %q, error stream %q", i, got, e)
		}
		return err
	})
	if err != nil {
		return err
	}
	// Nothing listens on port 9 in the pod: the error comes as text.
	got, e, err := pfGetPath(sc, 9, "9", "/")
	if err != nil {
		return err
	}
	if got != "" || !strings.Contains(e, "error forwarding port 9") {
		return fmt.Errorf("closed port: got %q error %q", got, e)
	}
	return nil
}

// The CLI's own client: quark port-forward LOCAL:REMOTE, then plain HTTP.
func podCLIPortForward() error {
	cmd := exec.Command(pe.quark, "port-forward", pe.pod, fmt.Sprintf("0:%d", pe.webPort))
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	line, err := bufio.NewReader(out).ReadString('\n')
	var lport, rport int
	if err != nil || func() bool {
		_, e := fmt.Sscanf(line, "Forwarding from 127.0.0.1:%d -> %d", &lport, &rport)
		return e != nil
	}() {
		return fmt.Errorf("quark port-forward said %q (%v)", line, err)
	}
	for i := 0; i < 3; i++ {
		c := http.Client{Timeout: 20 * time.Second}
		resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/index.html", lport))
		if err != nil {
			return err
		}
		b, _ := ioutil.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || strings.TrimSpace(string(b)) != "pod-ok" {
			return fmt.Errorf("GET: %d %q", resp.StatusCode, b)
		}
	}
	return nil
}

func podBadInput() error {
	u, err := podExecURL(false, false, "true")
	if err != nil {
		return err
	}
	if _, err := spdyExec(u, execOpts{stdout: true, stderr: true}); err != nil {
		return err
	}
	if code, _, err := httpStatus(u, []string{"v4.channel.k8s.io"}, nil); err != nil || code != 404 {
		return fmt.Errorf("reused token: %d %v", code, err)
	}
	if u, err = podExecURL(false, false, "true"); err != nil {
		return err
	}
	if code, hdr, err := httpStatus(u, []string{"v9.channel.k8s.io"}, nil); err != nil || code != 403 ||
		!strings.Contains(hdr.Get("X-Accepted-Stream-Protocol-Versions"), "v4.channel.k8s.io") {
		return fmt.Errorf("wrong protocol: %d %v %v", code, hdr, err)
	}
	// Garbage after the upgrade, before and after the process started.
	for i, junk := range [][]byte{
		[]byte("this is not spdy at all\r\n\r\n"),
		{0x80, 0x03, 0x00, 0x01, 0, 0, 0, 12, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xde, 0xad},
	} {
		u, err := podExecURL(false, false, "sleep", "30")
		if err != nil {
			return err
		}
		if err := garbageAfterUpgrade(u, junk, 10*time.Second); err != nil {
			return fmt.Errorf("case %d: %v", i, err)
		}
	}
	// Clients that vanish while their command runs, over both protocols.
	for _, mode := range []string{"spdy", "ws"} {
		u, err := podExecURL(true, false, "sh", "-c", "echo started; exec sleep 60")
		if err != nil {
			return err
		}
		if mode == "spdy" {
			if err := spdyVanish(u, 500*time.Millisecond); err != nil {
				return err
			}
		} else {
			r, err := wsDialRaw(u)
			if err != nil {
				return err
			}
			time.Sleep(500 * time.Millisecond)
			r.Close()
		}
	}
	return nil
}

func runPods(only string) int {
	ws := func(proto string) runner {
		return func(u string, o execOpts) (*result, error) { o.proto = proto; return wsExec(u, o) }
	}
	sp := func(proto string) runner {
		return func(u string, o execOpts) (*result, error) { o.proto = proto; return spdyExec(u, o) }
	}
	v4, v5 := "v4.channel.k8s.io", "v5.channel.k8s.io"
	type sc struct {
		name string
		fn   func() error
	}
	all := []sc{
		{"pod spdy exec hello", func() error { return podHello(sp(v4)) }},
		{"pod spdy exec exit code", func() error { return podExitCode(sp(v4)) }},
		{"pod spdy exec stdin (read a line, 64 KiB, half-close)", func() error { return podStdin(sp(v4)) }},
		{"pod spdy exec exit with stdin open", func() error { return podExitWithStdinOpen(sp(v4)) }},
		{"pod websocket v5 exec hello", func() error { return podHello(ws(v5)) }},
		{"pod websocket v4.base64 exec hello", func() error { return podHello(ws("v4.base64.channel.k8s.io")) }},
		{"pod websocket v5 exec exit code", func() error { return podExitCode(ws(v5)) }},
		{"pod websocket v5 exec stdin", func() error { return podStdin(ws(v5)) }},
	}
	all = append(all,
		sc{"pod spdy exec tty+stdin+resize", func() error { return podTTY(sp(v4), pe.tty) }},
		sc{"pod websocket v5 exec tty+stdin+resize", func() error { return podTTY(ws(v5), pe.tty) }},
		sc{"pod spdy exec tty: ^C interrupts, ^D ends the shell", func() error { return podTTYSignals(sp(v4), pe.tty) }},
		sc{"pod spdy exec tty: ^C while the shell waits for sleep", func() error { return podTTYInterruptSleep(sp(v4), pe.tty) }})
	all = append(all,
		sc{"pod spdy portforward HTTP 200 (busybox httpd)", podPortForward},
		sc{"pod quark port-forward HTTP 200", podCLIPortForward},
		sc{"pod bad input (reused token, protocol, garbage, vanishing clients)", podBadInput},
		sc{"pod exec after the bad input", func() error { return podHello(sp(v4)) }},
	)
	if pe.attach != "-" {
		all = append(all, sc{"pod spdy attach StdinOnce", func() error { return podAttach(sp(v4)) }})
	}
	if pe.ttyCid != "-" && pe.ttyCid != "" {
		all = append(all, sc{"pod spdy attach -it to a tty container (kubectl run -it)", func() error { return podAttachTTY(sp(v4)) }})
	}
	failed := 0
	for _, s := range all {
		if only != "" && !strings.Contains(s.name, only) {
			continue
		}
		t0 := time.Now()
		if err := s.fn(); err != nil {
			failed++
			fmt.Printf("FAIL %s: %v\n", s.name, err)
		} else {
			fmt.Printf("ok   %s (%v)\n", s.name, time.Since(t0).Round(time.Millisecond))
		}
	}
	if only == "" && failed == 0 {
		if l, err := podLatency(sp(v4), false); err == nil {
			fmt.Println(l)
		}
		if pe.tty {
			if l, err := podLatency(sp(v4), true); err == nil {
				fmt.Println(l)
			}
		}
	}
	if failed > 0 {
		fmt.Printf("%d scenario(s) failed\n", failed)
		return 1
	}
	return 0
}

// podLatency: median time of a whole exec session (upgrade, streams, the
// command `true` in the pod, exit status) over 10 runs; the URL's RPC is
// not counted.
func podLatency(run runner, tty bool) (string, error) {
	var ds []time.Duration
	for i := 0; i < 10; i++ {
		u, err := podExecURL(tty, tty, "true")
		if err != nil {
			return "", err
		}
		t0 := time.Now()
		if _, err := run(u, execOpts{tty: tty, stdin: tty, stdout: true, stderr: !tty, noPong: true}); err != nil {
			return "", err
		}
		ds = append(ds, time.Since(t0))
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	what := "exec"
	if tty {
		what = "exec with a tty"
	}
	return fmt.Sprintf("info %s session round trip in the pod: median %v, min %v, max %v (10 runs)",
		what, ds[5].Round(100*time.Microsecond), ds[0].Round(100*time.Microsecond), ds[9].Round(100*time.Microsecond)), nil
}

func min(a, b int) int {
	if a < b {
		return a
	}
	return b
}

func wsDialRaw(u string) (net.Conn, error) {
	d := websocket.Dialer{Subprotocols: []string{"v4.channel.k8s.io"}, HandshakeTimeout: 10 * time.Second}
	c, _, err := d.Dial(strings.Replace(u, "http://", "ws://", 1), nil)
	if err != nil {
		return nil, err
	}
	return c.UnderlyingConn(), nil
}
