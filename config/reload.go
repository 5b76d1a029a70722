package config

import (
	"context"
	"fmt"
	"log/slog"
)

// Reloader returns a function for service.WithReload (run on SIGHUP, as
// OpenStack services reload their configuration): it reads srcs again,
// logs the new configuration on l with its secrets redacted, and its
// notices, then hands it to apply, which decides what can change while
// the service runs. The previous configuration stays in force if the
// files cannot be read or are invalid, or if apply fails; the returned
// error says why. A nil l means slog.Default().
func (s *Sources) Reloader(l *slog.Logger, apply func(ctx context.Context, m *Messaging) error, opts ...LoadOption) func(context.Context) error {
	if l == nil {
		l = slog.Default()
	}
	return func(ctx context.Context) error {
		f, err := s.Load(opts...)
		if err != nil {
			return fmt.Errorf("config: reload: %w", err)
		}
		m, notices, err := FromFile(f)
		if err != nil {
			return fmt.Errorf("config: reload: %w", err)
		}
		for _, n := range notices {
			l.Warn("config: reload", "notice", n.String())
		}
		l.Info("config: reloaded", "files", f.Files(), "config", m.String())
		if apply == nil {
			return nil
		}
		if err := apply(ctx, m); err != nil {
			return fmt.Errorf("config: reload: %w", err)
		}
		return nil
	}
}
