// A TCP relay with io.Copy between two *net.TCPConn (Go splices, falling
// back to read/write on EINVAL): echo server <- relay <- client.
package main

import (
	"fmt"
	"io"
	"net"
	"os"
)

func main() {
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println("listen:", err)
		os.Exit(1)
	}
	go func() {
		c, _ := echo.Accept()
		io.Copy(c, c)
		c.Close()
	}()
	relay, _ := net.Listen("tcp", "127.0.0.1:0")
	done := make(chan error, 1)
	go func() {
		in, _ := relay.Accept()
		out, err := net.Dial("tcp", echo.Addr().String())
		if err != nil {
			done <- err
			return
		}
		go func() { io.Copy(in, out); in.Close() }()
		_, err = io.Copy(out, in) // *TCPConn.ReadFrom(*TCPConn): splice
		out.(*net.TCPConn).CloseWrite()
		done <- err
	}()
	c, _ := net.Dial("tcp", relay.Addr().String())
	msg := make([]byte, 200000)
	for i := range msg {
		msg[i] = byte(i % 251)
	}
	go func() { c.Write(msg); c.(*net.TCPConn).CloseWrite() }()
	got, err := io.ReadAll(c)
	if err != nil || len(got) != len(msg) {
		fmt.Println("relay:", len(got), err)
		os.Exit(1)
	}
	for i := range got {
		if got[i] != msg[i] {
			fmt.Println("relay: byte", i, "differs")
			os.Exit(1)
		}
	}
	if err := <-done; err != nil {
		fmt.Println("relay copy:", err)
		os.Exit(1)
	}
	fmt.Println("go relay: 200000 bytes through io.Copy between TCP connections")
}
