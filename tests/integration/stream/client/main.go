// Test client for Quark's CRI streaming server. It speaks to the server the
// way kubelet, kubectl and crictl do: SPDY/3.1 through github.com/moby/spdystream
// (the library they use) and WebSocket through gorilla/websocket, both from
// Debian's packages. It asks stream_testd (over its control socket) for URLs
// and runs every scenario, printing "ok NAME" or "FAIL NAME: why"; it exits 1
// when any scenario failed.
package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"io/ioutil"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/moby/spdystream"
)

var ctlPath string

// preFrames, when set, are written raw right after the upgrade, before
// spdystream takes the connection: control frames a client may send and
// the server must take in its stride.
var preFrames []byte

func ctl(req map[string]interface{}) (map[string]interface{}, error) {
	c, err := net.Dial("unix", ctlPath)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	b, _ := json.Marshal(req)
	c.Write(append(b, '\n'))
	var res map[string]interface{}
	if err := json.NewDecoder(c).Decode(&res); err != nil {
		return nil, err
	}
	if e, ok := res["error"]; ok {
		return res, fmt.Errorf("%v", e)
	}
	return res, nil
}

func mint(req map[string]interface{}) (string, error) {
	res, err := ctl(req)
	if err != nil {
		return "", err
	}
	return res["url"].(string), nil
}

// ---- SPDY ----

type spdyConn struct {
	raw  net.Conn
	conn *spdystream.Connection
}

// upgrade sends the handshake and returns the HTTP status and, on 101, a
// SPDY connection.
func upgrade(rawurl string, protos []string, extra http.Header) (int, http.Header, *spdyConn, error) {
	u, err := url.Parse(rawurl)
	if err != nil {
		return 0, nil, nil, err
	}
	c, err := net.Dial("tcp", u.Host)
	if err != nil {
		return 0, nil, nil, err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "POST %s HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n", u.RequestURI(), u.Host)
	for _, p := range protos {
		fmt.Fprintf(&b, "X-Stream-Protocol-Version: %s\r\n", p)
	}
	for k, vs := range extra {
		for _, v := range vs {
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
	c.Write([]byte(b.String()))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		c.Close()
		return 0, nil, nil, err
	}
	c.SetReadDeadline(time.Time{})
	if resp.StatusCode != 101 {
		c.Close()
		return resp.StatusCode, resp.Header, nil, nil
	}
	if br.Buffered() > 0 {
		c.Close()
		return 0, nil, nil, fmt.Errorf("server sent bytes before the client opened streams")
	}
	if preFrames != nil {
		c.Write(preFrames)
	}
	sc, err := spdystream.NewConnection(c, false)
	if err != nil {
		c.Close()
		return 0, nil, nil, err
	}
	go sc.Serve(spdystream.NoOpStreamHandler)
	return 101, resp.Header, &spdyConn{c, sc}, nil
}

func (s *spdyConn) stream(h http.Header) (*spdystream.Stream, error) {
	st, err := s.conn.CreateStream(h, nil, false)
	if err != nil {
		return nil, err
	}
	if err := st.WaitTimeout(10 * time.Second); err != nil {
		return nil, err
	}
	return st, nil
}

type execOpts struct {
	tty, stdin, stdout, stderr bool
	input                      string        // written to stdin, then stdin is closed unless keepOpen
	inputDelay                 time.Duration // SPDY: wait this long before writing input
	keepOpen                   bool
	resize                     string // a resize message sent before stdin
	proto                      string
	noPong                     bool // the session fails at once: no time to answer a ping
}

type result struct {
	stdout, stderr, status string
}

// spdyExec runs a remote command session the way kubectl's v4 client does.
func spdyExec(rawurl string, o execOpts) (*result, error) {
	proto := o.proto
	if proto == "" {
		proto = "v4.channel.k8s.io"
	}
	code, _, sc, err := upgrade(rawurl, []string{proto}, nil)
	if err != nil {
		return nil, err
	}
	if code != 101 {
		return nil, fmt.Errorf("upgrade: HTTP %d", code)
	}
	defer sc.conn.Close()
	st := func(t string) (*spdystream.Stream, error) { return sc.stream(http.Header{"Streamtype": {t}}) }
	errS, err := st("error")
	if err != nil {
		return nil, err
	}
	errS.Close() // the client only reads the error stream
	var inS, outS, errOut, rsS *spdystream.Stream
	if o.stdin {
		if inS, err = st("stdin"); err != nil {
			return nil, err
		}
	}
	if o.stdout {
		if outS, err = st("stdout"); err != nil {
			return nil, err
		}
	}
	if o.stderr && !o.tty {
		if errOut, err = st("stderr"); err != nil {
			return nil, err
		}
	}
	if o.tty && proto != "channel.k8s.io" && proto != "v2.channel.k8s.io" {
		if rsS, err = st("resize"); err != nil {
			return nil, err
		}
	}
	var wg sync.WaitGroup
	var outB, errB bytes.Buffer
	read := func(s *spdystream.Stream, b *bytes.Buffer) {
		if s == nil {
			return
		}
		wg.Add(1)
		go func() { defer wg.Done(); io.Copy(b, s) }()
	}
	read(outS, &outB)
	read(errOut, &errB)
	if rsS != nil && o.resize != "" {
		rsS.Write([]byte(o.resize))
	}
	if inS != nil {
		time.Sleep(o.inputDelay)
		if o.input != "" {
			inS.Write([]byte(o.input))
		}
		if !o.keepOpen {
			inS.Close()
		}
	}
	statusCh := make(chan string, 1)
	go func() { b, _ := ioutil.ReadAll(errS); statusCh <- string(b) }()
	select {
	case s := <-statusCh:
		wg.Wait()
		return &result{outB.String(), errB.String(), s}, nil
	case <-time.After(20 * time.Second):
		return nil, fmt.Errorf("timed out waiting for the exit status")
	}
}

// ---- WebSocket ----

func wsExec(rawurl string, o execOpts) (*result, error) {
	u := strings.Replace(rawurl, "http://", "ws://", 1)
	d := websocket.Dialer{Subprotocols: []string{o.proto}, HandshakeTimeout: 10 * time.Second}
	c, resp, err := d.Dial(u, nil)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("dial: HTTP %d", resp.StatusCode)
		}
		return nil, err
	}
	defer c.Close()
	if c.Subprotocol() != o.proto {
		return nil, fmt.Errorf("server picked %q", c.Subprotocol())
	}
	b64 := strings.Contains(o.proto, "base64")
	send := func(ch byte, data []byte) error {
		if b64 {
			return c.WriteMessage(websocket.TextMessage, append([]byte{'0' + ch}, []byte(b64enc(data))...))
		}
		return c.WriteMessage(websocket.BinaryMessage, append([]byte{ch}, data...))
	}
	// A ping in the middle must be answered without disturbing the session.
	pong := make(chan struct{}, 1)
	c.SetPongHandler(func(string) error { pong <- struct{}{}; return nil })
	c.WriteControl(websocket.PingMessage, []byte("hi"), time.Now().Add(time.Second))
	if o.resize != "" {
		send(4, []byte(o.resize))
	}
	if o.input != "" {
		send(0, []byte(o.input))
	}
	if o.stdin && !o.keepOpen && o.proto == "v5.channel.k8s.io" {
		send(255, []byte{0})
	}
	var out, errOut, st strings.Builder
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	for {
		mt, msg, err := c.ReadMessage()
		if err != nil {
			if ce, ok := err.(*websocket.CloseError); ok && ce.Code == websocket.CloseNormalClosure {
				break
			}
			return nil, err
		}
		if len(msg) == 0 {
			continue
		}
		ch, data := msg[0], msg[1:]
		if b64 {
			if mt != websocket.TextMessage {
				return nil, fmt.Errorf("binary message on a base64 protocol")
			}
			ch -= '0'
			data, err = b64dec(string(data))
			if err != nil {
				return nil, err
			}
		}
		switch ch {
		case 1:
			out.Write(data)
		case 2:
			errOut.Write(data)
		case 3:
			st.Write(data)
		}
	}
	res := result{out.String(), errOut.String(), st.String()}
	select {
	case <-pong:
	default:
		// Only a session that reads stdin is sure to see the ping (sent
		// before stdin) before it ends.
		if !o.noPong && o.input != "" {
			return nil, fmt.Errorf("no pong for our ping")
		}
	}
	return &res, nil
}

// ---- checks ----

type status struct {
	Status  string `json:"status"`
	Reason  string `json:"reason"`
	Details struct {
		Causes []struct {
			Reason  string `json:"reason"`
			Message string `json:"message"`
		} `json:"causes"`
	} `json:"details"`
}

func parseStatus(s string) (*status, error) {
	var st status
	if err := json.Unmarshal([]byte(s), &st); err != nil {
		return nil, fmt.Errorf("status %q: %v", s, err)
	}
	return &st, nil
}

func wantSuccess(s string) error {
	st, err := parseStatus(s)
	if err != nil {
		return err
	}
	if st.Status != "Success" {
		return fmt.Errorf("status %q", s)
	}
	return nil
}

func wantExit(s string, code string) error {
	st, err := parseStatus(s)
	if err != nil {
		return err
	}
	if st.Status != "Failure" || st.Reason != "NonZeroExitCode" || len(st.Details.Causes) != 1 ||
		st.Details.Causes[0].Reason != "ExitCode" || st.Details.Causes[0].Message != code {
		return fmt.Errorf("status %q, want exit code %s", s, code)
	}
	return nil
}

func execReq(cmd []string, tty, in, out, er bool) map[string]interface{} {
	return map[string]interface{}{"op": "exec", "container": "c1", "cmd": cmd, "tty": tty, "stdin": in, "stdout": out, "stderr": er}
}

type runner func(rawurl string, o execOpts) (*result, error)

func scenarioHello(run runner, proto string) error {
	u, err := mint(execReq([]string{"sh", "-c", "printf hello"}, false, false, true, true))
	if err != nil {
		return err
	}
	r, err := run(u, execOpts{stdout: true, stderr: true, proto: proto})
	if err != nil {
		return err
	}
	if r.stdout != "hello" || r.stderr != "" {
		return fmt.Errorf("stdout %q stderr %q", r.stdout, r.stderr)
	}
	return wantSuccess(r.status)
}

func scenarioExitCode(run runner, proto string) error {
	u, err := mint(execReq([]string{"sh", "-c", "echo oops >&2; exit 3"}, false, false, true, true))
	if err != nil {
		return err
	}
	r, err := run(u, execOpts{stdout: true, stderr: true, proto: proto})
	if err != nil {
		return err
	}
	if r.stderr != "oops\n" || r.stdout != "" {
		return fmt.Errorf("stdout %q stderr %q", r.stdout, r.stderr)
	}
	return wantExit(r.status, "3")
}

func scenarioTTY(run runner, proto string) error {
	u, err := mint(execReq([]string{"sh", "-c", "read x; echo got:$x; stty size"}, true, true, true, false))
	if err != nil {
		return err
	}
	r, err := run(u, execOpts{tty: true, stdin: true, stdout: true, keepOpen: true, proto: proto,
		input: "abc\n", resize: `{"Width":100,"Height":40}` + "\n"})
	if err != nil {
		return err
	}
	if !strings.Contains(r.stdout, "got:abc\r\n") || !strings.Contains(r.stdout, "40 100") {
		return fmt.Errorf("stdout %q", r.stdout)
	}
	if proto == "v3.channel.k8s.io" {
		// Before v4 the error stream stays empty on success.
		if r.status != "" {
			return fmt.Errorf("v3 success: error stream %q", r.status)
		}
		return nil
	}
	return wantSuccess(r.status)
}

func scenarioStdinClose(run runner, proto string) error {
	u, err := mint(execReq([]string{"cat"}, false, true, true, true))
	if err != nil {
		return err
	}
	data := strings.Repeat("0123456789abcdef", 20000) // 320 KB: more than a pipe holds
	r, err := run(u, execOpts{stdin: true, stdout: true, stderr: true, input: data, proto: proto})
	if err != nil {
		return err
	}
	if r.stdout != data {
		return fmt.Errorf("cat echoed %d bytes of %d", len(r.stdout), len(data))
	}
	return wantSuccess(r.status)
}

func scenarioExitWithStdinOpen(run runner, proto string) error {
	u, err := mint(execReq([]string{"sh", "-c", "echo bye; exit 7"}, false, true, true, true))
	if err != nil {
		return err
	}
	r, err := run(u, execOpts{stdin: true, stdout: true, stderr: true, keepOpen: true, proto: proto})
	if err != nil {
		return err
	}
	if r.stdout != "bye\n" {
		return fmt.Errorf("stdout %q", r.stdout)
	}
	return wantExit(r.status, "7")
}

func scenarioLegacyText(proto string) error {
	u, err := mint(execReq([]string{"sh", "-c", "exit 2"}, false, false, true, true))
	if err != nil {
		return err
	}
	r, err := spdyExec(u, execOpts{stdout: true, stderr: true, proto: proto})
	if err != nil {
		return err
	}
	if !strings.Contains(r.status, "exit code 2") || strings.HasPrefix(r.status, "{") {
		return fmt.Errorf("error stream %q", r.status)
	}
	return nil
}

var attachN int

func scenarioAttach(run runner, proto string) error {
	attachN++
	name := fmt.Sprintf("cat%d", attachN)
	if _, err := ctl(map[string]interface{}{"op": "spawn", "container": name, "cmd": []string{"cat"}, "stdin_once": true}); err != nil {
		return err
	}
	u, err := mint(map[string]interface{}{"op": "attach", "container": name, "stdin": true, "stdout": true, "stderr": true})
	if err != nil {
		return err
	}
	r, err := run(u, execOpts{stdin: true, stdout: true, stderr: true, input: "ping\n", proto: proto})
	if err != nil {
		return err
	}
	if r.stdout != "ping\n" {
		return fmt.Errorf("stdout %q", r.stdout)
	}
	if err := wantSuccess(r.status); err != nil {
		return err
	}
	st, err := ctl(map[string]interface{}{"op": "state", "container": name})
	if err != nil {
		return err
	}
	if st["running"] != false {
		return fmt.Errorf("StdinOnce: cat still running after stdin closed")
	}
	return nil
}

func scenarioAttachMissing(run runner, proto string) error {
	u, err := mint(map[string]interface{}{"op": "attach", "container": "nope", "stdout": true})
	if err != nil {
		return err
	}
	r, err := run(u, execOpts{stdout: true, proto: proto, noPong: true})
	if err != nil {
		return err
	}
	st, err := parseStatus(r.status)
	if err != nil {
		return err
	}
	if st.Status != "Failure" || !strings.Contains(r.status, "not running") {
		return fmt.Errorf("status %q", r.status)
	}
	return nil
}

// scenarioOddFrames sends SETTINGS, WINDOW_UPDATE and a PING before the
// session and a PING in the middle of it.
func scenarioOddFrames() error {
	preFrames = []byte{
		0x80, 3, 0, 4, 0, 0, 0, 12, 0, 0, 0, 1, 0, 0, 0, 7, 0, 1, 0, 0, // SETTINGS initial window 64k
		0x80, 3, 0, 9, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0x10, 0, // WINDOW_UPDATE session
		0x80, 3, 0, 6, 0, 0, 0, 4, 0, 0, 0, 0x65, // PING 101 (echoed, spdystream drops unknown ids)
	}
	defer func() { preFrames = nil }()
	u, err := mint(execReq([]string{"sh", "-c", "printf hello"}, false, false, true, true))
	if err != nil {
		return err
	}
	code, _, sc, err := upgrade(u, []string{"v4.channel.k8s.io"}, nil)
	if err != nil || code != 101 {
		return fmt.Errorf("upgrade %d %v", code, err)
	}
	defer sc.conn.Close()
	if _, err := sc.conn.Ping(); err != nil {
		return fmt.Errorf("ping: %v", err)
	}
	return nil
}

// ---- port forwarding ----

func httpServer() (int, func()) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "pf-ok "+r.URL.Path)
	})}
	go srv.Serve(l)
	return l.Addr().(*net.TCPAddr).Port, func() { srv.Close() }
}

// pfRequest sends one raw HTTP request over a new port-forward stream pair
// and returns the response's status code and body and the error stream's text
// (a refused forward answers on the error stream and closes the data stream).
func pfRequest(sc *spdyConn, port int, reqid, request string, wait time.Duration) (int, string, string, error) {
	h := http.Header{"Streamtype": {"error"}, "Port": {fmt.Sprint(port)}, "Requestid": {reqid}}
	errS, err := sc.stream(h)
	if err != nil {
		return 0, "", "", err
	}
	errS.Close()
	h.Set("Streamtype", "data")
	dataS, err := sc.stream(h)
	if err != nil {
		return 0, "", "", err
	}
	errCh := make(chan string, 1)
	go func() { b, _ := ioutil.ReadAll(errS); errCh <- string(b) }()
	io.WriteString(dataS, request)
	resp, err := http.ReadResponse(bufio.NewReader(dataS), nil)
	if err != nil {
		select {
		case e := <-errCh:
			return 0, "", e, nil
		case <-time.After(wait):
			return 0, "", "", err
		}
	}
	body, _ := ioutil.ReadAll(resp.Body)
	dataS.Close()
	return resp.StatusCode, string(body), <-errCh, nil
}

func pfGet(sc *spdyConn, port int, reqid string) (string, string, error) {
	req := fmt.Sprintf("GET /r%s HTTP/1.1\r\nHost: pod\r\nConnection: close\r\n\r\n", reqid)
	code, body, e, err := pfRequest(sc, port, reqid, req, 5*time.Second)
	if err != nil || code == 0 {
		return "", e, err
	}
	return fmt.Sprintf("%d %s", code, body), e, nil
}

// pfUpgrade opens a port-forward connection (SPDY) at u.
func pfUpgrade(u string) (*spdyConn, error) {
	code, hdr, sc, err := upgrade(u, []string{"portforward.k8s.io"}, nil)
	if err != nil {
		return nil, err
	}
	if code != 101 || hdr.Get("X-Stream-Protocol-Version") != "portforward.k8s.io" {
		if sc != nil {
			sc.conn.Close()
		}
		return nil, fmt.Errorf("upgrade: %d %v", code, hdr)
	}
	return sc, nil
}

// pfParallel runs check(0..n-1) at the same time and returns the first error.
func pfParallel(n int, check func(i int) error) error {
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			errs <- check(i)
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func scenarioPortForward() error {
	port, stop := httpServer()
	defer stop()
	u, err := mint(map[string]interface{}{"op": "portforward", "pod": "p1", "ports": []int{port}})
	if err != nil {
		return err
	}
	sc, err := pfUpgrade(u)
	if err != nil {
		return err
	}
	defer sc.conn.Close()
	// Several requests over one connection, two of them at the same time.
	err = pfParallel(3, func(i int) error {
		got, e, err := pfGet(sc, port, fmt.Sprint(i))
		if err == nil && (got != fmt.Sprintf("200 pf-ok /r%d", i) || e != "") {
			err = fmt.Errorf("got %q, error stream %q", got, e)
		}
		return err
	})
	if err != nil {
		return err
	}
	// Many more requests than the server keeps streams for: it recycles them.
	for i := 10; i < 170; i++ {
		got, e, err := pfGet(sc, port, fmt.Sprint(i))
		if err != nil || got != fmt.Sprintf("200 pf-ok /r%d", i) || e != "" {
			return fmt.Errorf("request %d: got %q, error stream %q, %v", i, got, e, err)
		}
	}
	// A closed port: the error comes as text on the error stream.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := l.Addr().(*net.TCPAddr).Port
	l.Close()
	got, e, err := pfGet(sc, dead, "9")
	if err != nil {
		return err
	}
	if got != "" || !strings.Contains(e, fmt.Sprintf("error forwarding port %d", dead)) {
		return fmt.Errorf("closed port: got %q error %q", got, e)
	}
	return nil
}

// scenarioWSPortForward follows kubelet's WebSocket port forwarding: per
// port of the request a data channel (2i) and an error channel (2i+1), each
// opened with the port number in two little-endian bytes.
func scenarioWSPortForward(proto string) error {
	port, stop := httpServer()
	defer stop()
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := l.Addr().(*net.TCPAddr).Port
	l.Close()
	u, err := mint(map[string]interface{}{"op": "portforward", "pod": "p1", "ports": []int{port, dead}})
	if err != nil {
		return err
	}
	d := websocket.Dialer{Subprotocols: []string{proto}, HandshakeTimeout: 10 * time.Second}
	c, resp, err := d.Dial(strings.Replace(u, "http://", "ws://", 1), nil)
	if err != nil {
		if resp != nil {
			return fmt.Errorf("dial: HTTP %d", resp.StatusCode)
		}
		return err
	}
	defer c.Close()
	b64 := strings.Contains(proto, "base64")
	req := []byte("GET /ws HTTP/1.1\r\nHost: pod\r\nConnection: close\r\n\r\n")
	if b64 {
		err = c.WriteMessage(websocket.TextMessage, append([]byte{'0'}, []byte(b64enc(req))...))
	} else {
		err = c.WriteMessage(websocket.BinaryMessage, append([]byte{0}, req...))
	}
	if err != nil {
		return err
	}
	chans := map[byte][]byte{}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, msg, err := c.ReadMessage()
		if err != nil {
			if ce, ok := err.(*websocket.CloseError); ok && ce.Code == websocket.CloseNormalClosure {
				break
			}
			return err
		}
		if len(msg) == 0 {
			continue
		}
		ch, data := msg[0], msg[1:]
		if b64 {
			ch -= '0'
			if data, err = b64dec(string(data)); err != nil {
				return err
			}
		}
		chans[ch] = append(chans[ch], data...)
	}
	le := func(p int) string { return string([]byte{byte(p), byte(p >> 8)}) }
	for ch, p := range map[byte]int{0: port, 1: port, 2: dead, 3: dead} {
		if !strings.HasPrefix(string(chans[ch]), le(p)) {
			return fmt.Errorf("channel %d does not start with port %d: %q", ch, p, chans[ch])
		}
	}
	r, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(chans[0][2:])), nil)
	if err != nil {
		return fmt.Errorf("response %q: %v", chans[0], err)
	}
	body, _ := ioutil.ReadAll(r.Body)
	if r.StatusCode != 200 || string(body) != "pf-ok /ws" {
		return fmt.Errorf("got %d %q", r.StatusCode, body)
	}
	if len(chans[1]) != 2 || !strings.Contains(string(chans[3]), fmt.Sprintf("error forwarding port %d", dead)) {
		return fmt.Errorf("error channels %q %q", chans[1], chans[3])
	}
	return nil
}

// scenarioConcurrent runs sessions side by side, SPDY and WebSocket mixed.
func scenarioConcurrent() error {
	const n = 24
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func(i int) {
			want := fmt.Sprintf("session-%d", i)
			u, err := mint(execReq([]string{"sh", "-c", "cat; printf " + want}, false, true, true, true))
			if err != nil {
				errs <- err
				return
			}
			var r *result
			o := execOpts{stdin: true, stdout: true, stderr: true, input: want + ":"}
			if i%2 == 0 {
				o.proto = "v4.channel.k8s.io"
				r, err = spdyExec(u, o)
			} else {
				o.proto = "v5.channel.k8s.io"
				r, err = wsExec(u, o)
			}
			if err == nil && r.stdout != want+":"+want {
				err = fmt.Errorf("session %d: stdout %q", i, r.stdout)
			}
			if err == nil {
				err = wantSuccess(r.status)
			}
			errs <- err
		}(i)
	}
	var first error
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// ---- bad input ----

func httpStatus(rawurl string, protos []string, extra http.Header) (int, http.Header, error) {
	code, hdr, sc, err := upgrade(rawurl, protos, extra)
	if sc != nil {
		sc.conn.Close()
	}
	return code, hdr, err
}

func scenarioReusedToken() error {
	u, err := mint(execReq([]string{"true"}, false, false, true, false))
	if err != nil {
		return err
	}
	if _, err := spdyExec(u, execOpts{stdout: true}); err != nil {
		return err
	}
	code, _, err := httpStatus(u, []string{"v4.channel.k8s.io"}, nil)
	if err != nil || code != 404 {
		return fmt.Errorf("reused token: %d %v", code, err)
	}
	code, _, err = httpStatus(u[:len(u)-64]+strings.Repeat("0", 64), []string{"v4.channel.k8s.io"}, nil)
	if err != nil || code != 404 {
		return fmt.Errorf("unknown token: %d %v", code, err)
	}
	return nil
}

func scenarioExpiredToken(ttl time.Duration) error {
	u, err := mint(execReq([]string{"true"}, false, false, true, false))
	if err != nil {
		return err
	}
	time.Sleep(ttl + 300*time.Millisecond)
	code, _, err := httpStatus(u, []string{"v4.channel.k8s.io"}, nil)
	if err != nil || code != 404 {
		return fmt.Errorf("expired token: %d %v", code, err)
	}
	return nil
}

func scenarioWrongProtocol() error {
	u, err := mint(execReq([]string{"true"}, false, false, true, false))
	if err != nil {
		return err
	}
	code, hdr, err := httpStatus(u, []string{"v9.channel.k8s.io", "bogus"}, nil)
	if err != nil || code != 403 || !strings.Contains(hdr.Get("X-Accepted-Stream-Protocol-Versions"), "v4.channel.k8s.io") {
		return fmt.Errorf("spdy: %d %v %v", code, hdr, err)
	}
	u, _ = mint(execReq([]string{"true"}, false, false, true, false))
	d := websocket.Dialer{Subprotocols: []string{"v9.channel.k8s.io"}}
	_, resp, err := d.Dial(strings.Replace(u, "http://", "ws://", 1), nil)
	if err == nil || resp == nil || resp.StatusCode != 403 {
		return fmt.Errorf("websocket: %v %v", resp, err)
	}
	return nil
}

func rawRequest(host, req string) (string, error) {
	c, err := net.Dial("tcp", host)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(15 * time.Second))
	c.Write([]byte(req))
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}

func scenarioBadHTTP(base string) error {
	u, _ := url.Parse(base)
	cases := []struct{ req, want string }{
		{"GET /exec/abc HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 404"},
		{"GARBAGE\r\n\r\n", "HTTP/1.1 400"},
		{"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", "HTTP/1.1 400"},
		{"GET /exec/" + strings.Repeat("a", 9000) + " HTTP/1.1\r\n\r\n", "HTTP/1.1 431"},
		{"DELETE /exec/0 HTTP/1.1\r\n\r\n", "HTTP/1.1 405"},
		{"POST /exec/0 HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", "HTTP/1.1 400"},
		{"POST /exec/0 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "HTTP/1.1 400"},
	}
	for _, c := range cases {
		got, err := rawRequest(u.Host, c.req)
		if err != nil || !strings.HasPrefix(got, c.want) {
			return fmt.Errorf("%q: got %q (%v), want %s", c.req[:16], got, err, c.want)
		}
	}
	// A valid token but no upgrade headers.
	tok, _ := mint(execReq([]string{"true"}, false, false, true, false))
	tu, _ := url.Parse(tok)
	got, err := rawRequest(u.Host, "POST "+tu.Path+" HTTP/1.1\r\nHost: x\r\n\r\n")
	if err != nil || !strings.HasPrefix(got, "HTTP/1.1 400") {
		return fmt.Errorf("no upgrade: %q %v", got, err)
	}
	return nil
}

// garbageAfterUpgrade upgrades an exec URL to SPDY by hand, writes junk and
// expects the server to close the connection within wait.
func garbageAfterUpgrade(u string, junk []byte, wait time.Duration) error {
	uu, _ := url.Parse(u)
	c, err := net.Dial("tcp", uu.Host)
	if err != nil {
		return err
	}
	defer c.Close()
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n\r\n", uu.Path)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		return fmt.Errorf("upgrade %v", err)
	}
	c.Write(junk)
	c.SetReadDeadline(time.Now().Add(wait))
	if _, err = io.Copy(ioutil.Discard, br); err != nil {
		return fmt.Errorf("server did not close: %v", err)
	}
	return nil
}

func scenarioGarbageFrames() error {
	for i, junk := range [][]byte{
		[]byte("this is not spdy at all, just text\r\n\r\n"),
		{0x80, 0x02, 0x00, 0x01, 0, 0, 0, 4, 1, 2, 3, 4},                                // wrong version
		{0x80, 0x03, 0x00, 0x01, 0, 0, 0, 12, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xde, 0xad}, // bad header block
		{0x80, 0x03, 0x00, 0x01, 0, 0xff, 0xff, 0xff},                                   // oversized
	} {
		u, err := mint(execReq([]string{"sleep", "30"}, false, false, true, false))
		if err != nil {
			return err
		}
		if err := garbageAfterUpgrade(u, junk, 5*time.Second); err != nil {
			return fmt.Errorf("case %d: %v", i, err)
		}
	}
	return nil
}

// spdyVanish opens an exec session's four streams at u, waits, then drops
// the connection: no GOAWAY, no FIN, just gone.
func spdyVanish(u string, after time.Duration) error {
	_, _, sc, err := upgrade(u, []string{"v4.channel.k8s.io"}, nil)
	if err != nil || sc == nil {
		return fmt.Errorf("upgrade: %v", err)
	}
	defer sc.raw.Close()
	for _, t := range []string{"error", "stdin", "stdout", "stderr"} {
		if _, err := sc.stream(http.Header{"Streamtype": {t}}); err != nil {
			return err
		}
	}
	time.Sleep(after)
	return nil
}

func scenarioClientVanishes() error {
	for _, mode := range []string{"spdy", "ws"} {
		u, err := mint(execReq([]string{"sh", "-c", "echo started; exec sleep 60"}, false, true, true, true))
		if err != nil {
			return err
		}
		if mode == "spdy" {
			if err := spdyVanish(u, 200*time.Millisecond); err != nil {
				return err
			}
		} else {
			d := websocket.Dialer{Subprotocols: []string{"v4.channel.k8s.io"}}
			c, _, err := d.Dial(strings.Replace(u, "http://", "ws://", 1), nil)
			if err != nil {
				return err
			}
			c.ReadMessage()
			c.UnderlyingConn().Close()
		}
	}
	// The exec'd processes are ended with their sessions.
	deadline := time.Now().Add(5 * time.Second)
	for {
		res, err := ctl(map[string]interface{}{"op": "procs"})
		if err != nil {
			return err
		}
		if res["live_execs"].(float64) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%v exec'd processes still alive after their clients left", res["live_execs"])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// throughput streams 16 MiB (STREAM_THROUGHPUT_MIB) of stdout through a session and reports the rate.
func throughput(name string, run runner, proto string) (string, error) {
	n := 16 << 20
	if v := os.Getenv("STREAM_THROUGHPUT_MIB"); v != "" {
		fmt.Sscan(v, &n)
		n <<= 20
	}
	u, err := mint(execReq([]string{"head", "-c", fmt.Sprint(n), "/dev/zero"}, false, false, true, true))
	if err != nil {
		return "", err
	}
	t0 := time.Now()
	r, err := run(u, execOpts{stdout: true, stderr: true, proto: proto})
	if err != nil {
		return "", err
	}
	d := time.Since(t0)
	if len(r.stdout) != n {
		return "", fmt.Errorf("got %d bytes of %d", len(r.stdout), n)
	}
	return fmt.Sprintf("%s stdout throughput: %.0f MiB/s", name, float64(n)/d.Seconds()/(1<<20)), wantSuccess(r.status)
}

func latency() (string, error) {
	var ds []time.Duration
	for i := 0; i < 30; i++ {
		t0 := time.Now()
		u, err := mint(execReq([]string{"true"}, false, false, true, true))
		if err != nil {
			return "", err
		}
		r, err := spdyExec(u, execOpts{stdout: true, stderr: true})
		if err != nil {
			return "", err
		}
		if err := wantSuccess(r.status); err != nil {
			return "", err
		}
		ds = append(ds, time.Since(t0))
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return fmt.Sprintf("exec /bin/true round trip over SPDY (mint URL, upgrade, 4 streams, exit status): median %v, p90 %v, min %v",
		ds[len(ds)/2].Round(time.Microsecond), ds[len(ds)*9/10].Round(time.Microsecond), ds[0].Round(time.Microsecond)), nil
}

func main() {
	base := flag.String("base", "", "server URL (stream_testd prints it)")
	ttl := flag.Duration("ttl", time.Second, "token TTL stream_testd runs with")
	only := flag.String("run", "", "run only scenarios whose name contains this")
	flag.StringVar(&ctlPath, "ctl", "", "stream_testd control socket")
	hold := flag.Bool("hold", false, "open one exec session and report when the server ends it")
	flag.StringVar(&pe.quark, "quark", "", "pods mode (tests/e2e/stream): the quark CLI that mints URLs")
	flag.StringVar(&pe.pod, "pod", "", "pods mode: pod id")
	flag.StringVar(&pe.cid, "cid", "", "pods mode: a running container")
	flag.StringVar(&pe.attach, "attach-cid", "", "pods mode: a container running cat with StdinOnce")
	flag.StringVar(&pe.ttyCid, "tty-cid", "-", "pods mode: a container running sh with a tty")
	flag.IntVar(&pe.webPort, "web-port", 0, "pods mode: httpd's port in the pod")
	flag.BoolVar(&pe.tty, "tty", false, "pods mode: the runtime supports a tty")
	flag.Parse()
	if pe.quark != "" {
		os.Exit(runPods(*only))
	}
	if *hold {
		os.Exit(holdSession())
	}
	ws := func(proto string) runner {
		return func(u string, o execOpts) (*result, error) { o.proto = proto; return wsExec(u, o) }
	}
	sp := func(proto string) runner {
		return func(u string, o execOpts) (*result, error) { o.proto = proto; return spdyExec(u, o) }
	}
	type sc struct {
		name string
		fn   func() error
	}
	var all []sc
	for _, p := range []string{"v4.channel.k8s.io", "v5.channel.k8s.io", "v3.channel.k8s.io"} {
		p := p
		if p != "v3.channel.k8s.io" {
			all = append(all,
				sc{"spdy " + p + " exec hello", func() error { return scenarioHello(sp(p), p) }},
				sc{"spdy " + p + " exec exit code", func() error { return scenarioExitCode(sp(p), p) }},
				sc{"spdy " + p + " exec stdin half-close", func() error { return scenarioStdinClose(sp(p), p) }},
				sc{"spdy " + p + " exec exit with stdin open", func() error { return scenarioExitWithStdinOpen(sp(p), p) }},
				sc{"spdy " + p + " attach StdinOnce", func() error { return scenarioAttach(sp(p), p) }})
		}
		all = append(all, sc{"spdy " + p + " exec tty+stdin+resize", func() error { return scenarioTTY(sp(p), p) }})
	}
	for _, p := range []string{"channel.k8s.io", "v2.channel.k8s.io"} {
		p := p
		all = append(all, sc{"spdy " + p + " exit code as text", func() error { return scenarioLegacyText(p) }})
	}
	for _, p := range []string{"v4.channel.k8s.io", "v5.channel.k8s.io", "v4.base64.channel.k8s.io"} {
		p := p
		all = append(all,
			sc{"websocket " + p + " exec hello", func() error { return scenarioHello(ws(p), p) }},
			sc{"websocket " + p + " exec exit code", func() error { return scenarioExitCode(ws(p), p) }},
			sc{"websocket " + p + " exec tty+stdin+resize", func() error { return scenarioTTY(ws(p), p) }})
	}
	all = append(all,
		sc{"websocket v5.channel.k8s.io stdin close", func() error { return scenarioStdinClose(ws("v5.channel.k8s.io"), "v5.channel.k8s.io") }},
		sc{"websocket v5.channel.k8s.io attach StdinOnce", func() error { return scenarioAttach(ws("v5.channel.k8s.io"), "v5.channel.k8s.io") }},
		sc{"spdy portforward HTTP 200", scenarioPortForward},
		sc{"websocket v4.channel.k8s.io portforward HTTP 200", func() error { return scenarioWSPortForward("v4.channel.k8s.io") }},
		sc{"websocket v4.base64.channel.k8s.io portforward HTTP 200", func() error { return scenarioWSPortForward("v4.base64.channel.k8s.io") }},
		sc{"spdy attach to a missing container", func() error { return scenarioAttachMissing(sp("v4.channel.k8s.io"), "v4.channel.k8s.io") }},
		sc{"websocket attach to a missing container", func() error { return scenarioAttachMissing(ws("v4.channel.k8s.io"), "v4.channel.k8s.io") }},
		sc{"spdy SETTINGS, WINDOW_UPDATE, PING", scenarioOddFrames},
		sc{"24 concurrent sessions", scenarioConcurrent},
		sc{"reused and unknown token 404", scenarioReusedToken},
		sc{"expired token 404", func() error { return scenarioExpiredToken(*ttl) }},
		sc{"wrong protocol 403", scenarioWrongProtocol},
		sc{"bad HTTP requests", func() error { return scenarioBadHTTP(*base) }},
		sc{"garbage SPDY frames", scenarioGarbageFrames},
		sc{"client vanishes mid-stream", scenarioClientVanishes},
		sc{"exec after the bad input", func() error { return scenarioHello(sp("v4.channel.k8s.io"), "v4.channel.k8s.io") }},
	)
	failed := 0
	for _, s := range all {
		if *only != "" && !strings.Contains(s.name, *only) {
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
	if *only == "" && failed == 0 {
		l, err := latency()
		if err != nil {
			failed++
			fmt.Printf("FAIL latency: %v\n", err)
		} else {
			fmt.Println(l)
		}
		for _, t := range []struct {
			name  string
			run   runner
			proto string
		}{{"spdy", sp("v4.channel.k8s.io"), "v4.channel.k8s.io"}, {"websocket", ws("v5.channel.k8s.io"), "v5.channel.k8s.io"}} {
			l, err := throughput(t.name, t.run, t.proto)
			if err != nil {
				failed++
				fmt.Printf("FAIL throughput %s: %v\n", t.name, err)
			} else {
				fmt.Println(l)
			}
		}
	}
	if failed > 0 {
		fmt.Printf("%d scenario(s) failed\n", failed)
		os.Exit(1)
	}
}

func b64enc(b []byte) string          { return base64Std.EncodeToString(b) }
func b64dec(s string) ([]byte, error) { return base64Std.DecodeString(s) }

var base64Std = base64.StdEncoding

// holdSession keeps an exec session (sleep 60) open until the server closes
// the connection: run.sh stops stream_testd meanwhile.
func holdSession() int {
	u, err := mint(execReq([]string{"sleep", "60"}, false, true, true, true))
	if err != nil {
		fmt.Println("hold:", err)
		return 1
	}
	_, _, sc, err := upgrade(u, []string{"v4.channel.k8s.io"}, nil)
	if err != nil || sc == nil {
		fmt.Println("hold: upgrade", err)
		return 1
	}
	var out *spdystream.Stream
	for _, t := range []string{"error", "stdin", "stdout", "stderr"} {
		st, err := sc.stream(http.Header{"Streamtype": {t}})
		if err != nil {
			fmt.Println("hold:", err)
			return 1
		}
		if t == "stdout" {
			out = st
		}
	}
	fmt.Println("holding")
	done := make(chan struct{})
	go func() { io.Copy(ioutil.Discard, out); close(done) }()
	select {
	case <-sc.conn.CloseChan():
	case <-done:
	case <-time.After(20 * time.Second):
		fmt.Println("hold: still open after 20s")
		return 1
	}
	fmt.Println("closed")
	return 0
}
