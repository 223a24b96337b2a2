package commands

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/loadgen"
)

// jsonNames lists the JSON field names of t and of the structs inside it.
func jsonNames(t reflect.Type, seen map[reflect.Type]bool) []string {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || t == reflect.TypeOf(time.Time{}) || seen[t] {
		return nil
	}
	seen[t] = true
	var names []string
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Anonymous {
			names = append(names, jsonNames(f.Type, seen)...)
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		names = append(names, name)
		names = append(names, jsonNames(f.Type, seen)...)
	}
	return names
}

// TestCLIOutputDocumented checks that docs/cli-output.md names every JSON
// field a command can print.
func TestCLIOutputDocumented(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "docs", "cli-output.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []any{api.SubmitResult{}, api.Job{}, api.Output{}, api.CancelResult{}, api.DeleteResult{}, api.PruneResult{}, api.PauseResult{}, api.Client{}, api.Group{},
		api.User{}, api.NewToken{}, api.Token{}, api.ACLRule{}, api.ACLDecision{}, api.AuditEntry{}, api.Op{}, api.OpClass{},
		api.BlacklistEntry{}, api.BlacklistCheck{}, api.ServerInfo{}, api.ServerStatus{}, api.DBBackup{}, api.DBRestore{},
		api.DBReset{}, migrateResult{}, RecoverResult{}, setting{}, VersionInfo{}, outputGroup{}, api.Schedule{}, api.SchedulePauseResult{},
		api.ScheduleRunResult{}, api.ScheduleTick{}, api.Webhook{}, api.WebhookDelivery{}, api.WebhookTestResult{}, loadgen.Results{}} {
		typ := reflect.TypeOf(v)
		for _, name := range jsonNames(typ, map[reflect.Type]bool{}) {
			if !strings.Contains(string(doc), "`"+name+"`") {
				t.Errorf("docs/cli-output.md does not name field %q of %s", name, typ.Name())
			}
		}
	}
}
