// Package objects holds the values the services of the compute example
// exchange: the instance, its states, the notification payload and the
// errors every service agrees on. It plays the part of the versioned
// objects of an OpenStack project, kept to plain JSON-encoded structs.
package objects

import (
	"errors"
	"time"
)

// Instance states.
const (
	// StateBuilding: the conductor has recorded the instance and sent it
	// to a compute host, which has not booted it yet.
	StateBuilding = "building"
	// StateActive: the instance runs on its host.
	StateActive = "active"
	// StateRebooting: its host is rebooting it.
	StateRebooting = "rebooting"
	// StateDeleting: the conductor has asked its host to delete it.
	StateDeleting = "deleting"
	// StateDeleted: its host has deleted it.
	StateDeleted = "deleted"
	// StateError: the instance could not be built.
	StateError = "error"
)

// Instance is a virtual machine of the example, as the services record
// it. It travels as JSON in RPC arguments, results and notifications.
type Instance struct {
	// ID is the instance's UUID.
	ID string `json:"id"`
	// Name is the display name the user chose.
	Name string `json:"name"`
	// Flavor names the instance's size, such as "m1.small".
	Flavor string `json:"flavor"`
	// ProjectID is the project of the user who created it.
	ProjectID string `json:"project_id"`
	// Host is the compute host the conductor placed it on.
	Host string `json:"host"`
	// State is one of the State constants.
	State string `json:"state"`
	// Reboots counts the reboots of the instance.
	Reboots int `json:"reboots"`
	// Revision increases with every change of the record. Casts are not
	// ordered, so a service keeps the update with the highest revision
	// and drops older ones that arrive late.
	Revision int64 `json:"revision"`
	// CreatedAt is when the conductor recorded the instance, in UTC.
	CreatedAt time.Time `json:"created_at"`
	// UpdatedAt is the time of the last change, in UTC.
	UpdatedAt time.Time `json:"updated_at"`
}

// Notification event types the compute service emits.
const (
	EventCreateStart = "compute.instance.create.start"
	EventCreateEnd   = "compute.instance.create.end"
	EventRebootStart = "compute.instance.reboot.start"
	EventRebootEnd   = "compute.instance.reboot.end"
	EventDeleteStart = "compute.instance.delete.start"
	EventDeleteEnd   = "compute.instance.delete.end"
)

// Topics of the services, and the notification topic.
const (
	ConductorTopic     = "conductor"
	ComputeTopic       = "compute"
	SchedulerTopic     = "scheduler"
	BillingTopic       = "billing"
	NotificationsTopic = "notifications"
)

// Local errors that remote exceptions map to (rpc.WithRemoteErrors), so
// that callers test them with errors.Is across the bus.
var (
	// ErrNotFound: no such instance.
	ErrNotFound = errors.New("instance not found")
	// ErrInvalidState: the instance's state does not allow the action.
	ErrInvalidState = errors.New("invalid instance state")
	// ErrNoHost: no compute host is known to place the instance on.
	ErrNoHost = errors.New("no compute host available")
)

// Remote exception names of the errors above, as a handler returns them
// (rpc.NewRemoteError) and a client maps them back (RemoteErrors).
const (
	ExcNotFound     = "compute_example.exception.InstanceNotFound"
	ExcInvalidState = "compute_example.exception.InstanceInvalidState"
	ExcNoHost       = "compute_example.exception.NoValidHost"
)

// RemoteErrors maps the example's remote exception names to the local
// errors, for rpc.WithRemoteErrors.
func RemoteErrors() map[string]error {
	return map[string]error{
		ExcNotFound:     ErrNotFound,
		ExcInvalidState: ErrInvalidState,
		ExcNoHost:       ErrNoHost,
	}
}
