//go:build !js

package signalclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// gorillaTransport is the transport for every platform except the browser.
type gorillaTransport struct {
	ws        *websocket.Conn
	opts      dialOptions
	closeOnce sync.Once
}

func dial(ctx context.Context, opts dialOptions) (transport, error) {
	d := websocket.Dialer{
		Proxy:           http.ProxyFromEnvironment,
		ReadBufferSize:  4096,
		WriteBufferSize: 4096,
	}
	ws, resp, err := d.DialContext(ctx, opts.url, http.Header(opts.header))
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("websocket dial %s: %w (HTTP %s)", opts.url, err, resp.Status)
		}
		return nil, fmt.Errorf("websocket dial %s: %w", opts.url, err)
	}
	t := &gorillaTransport{ws: ws, opts: opts}
	ws.SetReadLimit(int64(opts.maxFrameSize))
	// The server's pings prove it is alive; answer them and extend the idle deadline.
	ws.SetPingHandler(func(data string) error {
		ws.SetReadDeadline(time.Now().Add(opts.idleTimeout))
		err := ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(opts.writeTimeout))
		if errors.Is(err, websocket.ErrCloseSent) {
			return nil
		}
		return err
	})
	return t, nil
}

func (t *gorillaTransport) ReadMessage() ([]byte, error) {
	t.ws.SetReadDeadline(time.Now().Add(t.opts.idleTimeout))
	kind, data, err := t.ws.ReadMessage()
	if err != nil {
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return nil, &CloseError{Code: ce.Code, Reason: ce.Text}
		}
		return nil, err
	}
	if kind != websocket.TextMessage {
		return nil, errors.New("server sent a binary frame; the protocol uses text frames only")
	}
	return data, nil
}

func (t *gorillaTransport) WriteMessage(frame []byte) error {
	t.ws.SetWriteDeadline(time.Now().Add(t.opts.writeTimeout))
	return t.ws.WriteMessage(websocket.TextMessage, frame)
}

func (t *gorillaTransport) Close() error {
	var err error
	t.closeOnce.Do(func() {
		t.ws.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
		err = t.ws.Close()
	})
	return err
}
