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
	// hardMaxMessageSize is the largest value of max_message_size:
	// RabbitMQ's own hard limit on a message body (512 MiB).
	hardMaxMessageSize = 512 << 20
)

// errMessageTooLarge is the reason a received message is rejected for
// its size.
var errMessageTooLarge = errors.New("message too large")

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
// application/x-gzip, bzip2 for application/x-bz2). A body larger than
// limit bytes, as received or once decompressed, is refused with an
// error wrapping errMessageTooLarge before anything of it is decoded;
// decompression stops as soon as it passes the limit, so that a small
// compressed body cannot make the driver allocate more than limit bytes.
func messageBody(d *amqp.Delivery, limit int) ([]byte, error) {
	if len(d.Body) > limit {
		return nil, fmt.Errorf("%w: body of %d bytes, more than the limit of %d", errMessageTooLarge, len(d.Body), limit)
	}
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
	out, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
	if err != nil {
		return nil, fmt.Errorf("decompress %s body: %w", kind, err)
	}
	if len(out) > limit {
		return nil, fmt.Errorf("%w: %s body of %d bytes decompresses to more than the limit of %d",
			errMessageTooLarge, kind, len(d.Body), limit)
	}
	return out, nil
}
