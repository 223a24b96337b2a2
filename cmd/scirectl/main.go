// Command scirectl is the job server, its agent and its operator CLI in one
// binary; the command tree lives in package commands.
package main

import (
	"os"

	"github.com/scirectl/scirectl/commands"
	_ "github.com/scirectl/scirectl/db/postgres"
	_ "github.com/scirectl/scirectl/db/sqlite"
)

func main() {
	os.Exit(commands.Execute(commands.System(), os.Args[1:]))
}
