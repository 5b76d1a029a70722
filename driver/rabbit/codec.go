package rabbit

import (
	"bytes"
	"compress/bzip2"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Message properties, as oslo (kombu) sets them on every message.
const (
	contentType     = "application/json"
	contentEncoding = "utf-8"
	// headerCompression names the compression of a body (kombu).
	headerCompression = "compression"
	mimeGzip          = "application/x-gzip"
	mimeBzip2         = "application/x-bz2"
	// maxBody bounds a decompressed body: RabbitMQ's own default
	// max_message_size in 3.x.
	maxBody = 128 << 20
)

var errBodyTooLarge = errors.New("decompressed body larger than 128 MiB")

// publishing returns the AMQP message for body with oslo's properties:
// content type application/json, encoding utf-8, delivery mode 2
// (persistent) and priority 0, compressed with zlib and marked by the
// compression header when compress is set, and with expiration set when
// ttl is positive (call requests).
func publishing(body []byte, compress bool, ttl time.Duration) (amqp.Publishing, error) {
	p := amqp.Publishing{
		ContentType:     contentType,
		ContentEncoding: contentEncoding,
		DeliveryMode:    amqp.Persistent,
		Priority:        0,
		// oslo sends an empty header table; amqp091 omits empty tables,
		// and receivers treat both alike.
		Headers: amqp.Table{},
		Body:    body,
	}
	if compress {
		var b bytes.Buffer
		w := zlib.NewWriter(&b)
		if _, err := w.Write(body); err != nil {
			return p, err
		}
		if err := w.Close(); err != nil {
			return p, err
		}
		p.Body = b.Bytes()
		p.Headers[headerCompression] = mimeGzip
	}
	if ttl > 0 {
		ms := ttl.Milliseconds()
		if ms < 1 {
			ms = 1
		}
		p.Expiration = strconv.FormatInt(ms, 10)
	}
	return p, nil
}

// messageBody checks a received message as oslo does and returns its
// JSON body: the content type must be application/json, and a body
// marked by the compression header is decompressed (zlib for
// application/x-gzip, bzip2 for application/x-bz2).
func messageBody(d *amqp.Delivery) ([]byte, error) {
	if d.ContentType != contentType {
		return nil, fmt.Errorf("content type %q is not %s", d.ContentType, contentType)
	}
	raw, ok := d.Headers[headerCompression]
	if !ok || raw == nil {
		return d.Body, nil
	}
	var kind string
	switch v := raw.(type) {
	case string:
		kind = v
	case []byte:
		kind = string(v)
	default:
		return nil, fmt.Errorf("compression header of type %T", raw)
	}
	var r io.Reader
	switch kind {
	case mimeGzip, "gzip", "zlib":
		zr, err := zlib.NewReader(bytes.NewReader(d.Body))
		if err != nil {
			return nil, fmt.Errorf("zlib body: %w", err)
		}
		defer zr.Close()
		r = zr
	case mimeBzip2, "bzip2", "bz2":
		r = bzip2.NewReader(bytes.NewReader(d.Body))
	default:
		return nil, fmt.Errorf("unsupported compression %q", kind)
	}
	out, err := io.ReadAll(io.LimitReader(r, maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("decompress %s body: %w", kind, err)
	}
	if len(out) > maxBody {
		return nil, errBodyTooLarge
	}
	return out, nil
}
