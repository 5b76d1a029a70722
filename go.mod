module github.com/go-oslo/messaging

go 1.25
