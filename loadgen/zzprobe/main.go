package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/scirectl/scirectl/db"
	_ "github.com/scirectl/scirectl/db/sqlite"
)

func main() {
	ctx := context.Background()
	for _, q := range []string{"", "?synchronous=normal"} {
		dir, _ := os.MkdirTemp("", "probe")
		s, err := db.Open(ctx, "sqlite://"+dir+"/x.db"+q)
		if err != nil {
			panic(err)
		}
		c, _ := s.RegisterClient(ctx, db.ClientRegistration{Fingerprint: "ab", Name: "n", Hostname: "n", Mode: db.ModePoll, At: time.Now()})
		s.SetClientStatus(ctx, c.ID, db.ClientActive)
		t0 := time.Now()
		n := 3000
		for i := 0; i < n; i++ {
			if _, err := s.SubmitJob(ctx, db.NewJob{Name: "x", Interpreter: "/bin/sh", Script: "true", SubmittedBy: "admin", ClientIDs: []int64{c.ID}}); err != nil {
				panic(err)
			}
		}
		fmt.Printf("%q: %v per submit\n", q, time.Since(t0)/time.Duration(n))
		s.Close()
		os.RemoveAll(dir)
	}
}
