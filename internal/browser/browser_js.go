//go:build js && wasm

package browser

import (
	"errors"
	"fmt"
	"syscall/js"
)

// Await waits for promise to settle and returns its value, or its rejection as an error.
// It blocks the calling goroutine, which lets the browser's event loop run meanwhile; it must
// not be called from inside a js.FuncOf callback, where blocking deadlocks the page.
func Await(promise js.Value) (js.Value, error) {
	type result struct {
		v   js.Value
		err error
	}
	done := make(chan result, 1)
	onOK := js.FuncOf(func(_ js.Value, args []js.Value) any {
		v := js.Undefined()
		if len(args) > 0 {
			v = args[0]
		}
		done <- result{v: v}
		return nil
	})
	onErr := js.FuncOf(func(_ js.Value, args []js.Value) any {
		reason := js.Undefined()
		if len(args) > 0 {
			reason = args[0]
		}
		done <- result{err: Error(reason)}
		return nil
	})
	defer onOK.Release()
	defer onErr.Release()
	promise.Call("then", onOK, onErr)
	r := <-done
	return r.v, r.err
}

// Call invokes v.method(args...) and turns a thrown JavaScript exception into an error
// instead of a Go panic.
func Call(v js.Value, method string, args ...any) (result js.Value, err error) {
	defer func() {
		if r := recover(); r != nil {
			if jsErr, ok := r.(js.Error); ok {
				err = fmt.Errorf("%s: %w", method, Error(jsErr.Value))
				return
			}
			err = fmt.Errorf("%s: %v", method, r)
		}
	}()
	return v.Call(method, args...), nil
}

// Error converts a JavaScript error (or any thrown value) to a Go error.
func Error(v js.Value) error {
	switch {
	case v.Type() == js.TypeObject && v.Get("message").Type() == js.TypeString:
		name := v.Get("name")
		if name.Type() == js.TypeString && name.String() != "" {
			return errors.New(name.String() + ": " + v.Get("message").String())
		}
		return errors.New(v.Get("message").String())
	case v.Type() == js.TypeString:
		return errors.New(v.String())
	default:
		return fmt.Errorf("javascript error: %v", v)
	}
}

// Bytes copies the bytes of an ArrayBuffer or a Uint8Array into a new Go slice.
func Bytes(v js.Value) []byte {
	u8 := v
	if !v.InstanceOf(js.Global().Get("Uint8Array")) {
		u8 = js.Global().Get("Uint8Array").New(v)
	}
	b := make([]byte, u8.Get("length").Int())
	js.CopyBytesToGo(b, u8)
	return b
}

// Uint8Array copies b into a new JavaScript Uint8Array.
func Uint8Array(b []byte) js.Value {
	u8 := js.Global().Get("Uint8Array").New(len(b))
	js.CopyBytesToJS(u8, b)
	return u8
}

// New runs `new ctor(args...)`, turning a thrown JavaScript exception (a bad URL, an
// unsupported option) into an error instead of a Go panic.
func New(ctor js.Value, args ...any) (v js.Value, err error) {
	defer func() {
		if r := recover(); r != nil {
			if jsErr, ok := r.(js.Error); ok {
				err = Error(jsErr.Value)
				return
			}
			err = fmt.Errorf("%v", r)
		}
	}()
	return ctor.New(args...), nil
}

// On installs handler as target's on<event> callback and returns the function, which the
// caller must Release once target can no longer fire it. handler runs on the page's event
// loop: it must not block.
func On(target js.Value, event string, handler func(ev js.Value)) js.Func {
	f := js.FuncOf(func(_ js.Value, args []js.Value) any {
		ev := js.Undefined()
		if len(args) > 0 {
			ev = args[0]
		}
		handler(ev)
		return nil
	})
	target.Set("on"+event, f)
	return f
}
