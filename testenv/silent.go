package testenv

import (
	"net"
	"sync"
)

// SilentListener is a fault injector, the other fake of testenv beside
// FaultProxy: a TCP listener that accepts connections and never answers,
// as a registry whose process hangs, or a load balancer in front of a dead
// one, does. Plain HTTP clients wait for response headers forever; HTTPS
// clients wait for the TLS handshake.
type SilentListener struct {
	// Host is the listener's host:port.
	Host string

	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
	done  chan struct{}
}

// StartSilentListener listens on a free port of 127.0.0.1.
func StartSilentListener() (*SilentListener, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &SilentListener{Host: ln.Addr().String(), ln: ln, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, c) // held open, never read or written
			s.mu.Unlock()
		}
	}()
	return s, nil
}

// Accepted is how many connections the listener has taken.
func (s *SilentListener) Accepted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Close stops listening and drops every connection.
func (s *SilentListener) Close() error {
	err := s.ln.Close()
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		c.Close()
	}
	return err
}
