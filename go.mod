module github.com/go-oslo/messaging

go 1.25

require (
	github.com/rabbitmq/amqp091-go v1.16.0
	go.uber.org/goleak v1.3.0
)
