package api

// The operator methods (docs/protocol.md, "Operator methods"): the names
// the server registers and the CLI calls. The agent protocol's are in
// agent.go.
const (
	MethodACLAdd       = "acl.add"
	MethodACLCheck     = "acl.check"
	MethodACLList      = "acl.list"
	MethodACLRemove    = "acl.remove"
	MethodACLSetActive = "acl.setActive"

	MethodAuditList = "audit.list"

	MethodBlacklistAdd    = "blacklist.add"
	MethodBlacklistCheck  = "blacklist.check"
	MethodBlacklistList   = "blacklist.list"
	MethodBlacklistRemove = "blacklist.remove"

	MethodClientAccept = "client.accept"
	MethodClientDelete = "client.delete"
	MethodClientGet    = "client.get"
	MethodClientLabel  = "client.label"
	MethodClientList   = "client.list"
	MethodClientReject = "client.reject"
	MethodClientRevoke = "client.revoke"

	MethodDBBackup  = "db.backup"
	MethodDBMigrate = "db.migrate"
	MethodDBReset   = "db.reset"
	MethodDBRestore = "db.restore"

	MethodEventsList = "events.list"

	MethodGroupAdd    = "group.add"
	MethodGroupCreate = "group.create"
	MethodGroupDelete = "group.delete"
	MethodGroupGet    = "group.get"
	MethodGroupList   = "group.list"
	MethodGroupRemove = "group.remove"

	MethodJobCancel = "job.cancel"
	MethodJobDelete = "job.delete"
	MethodJobGet    = "job.get"
	MethodJobList   = "job.list"
	MethodJobOutput = "job.output"
	MethodJobPause  = "job.pause"
	MethodJobPrune  = "job.prune"
	MethodJobRerun  = "job.rerun"
	MethodJobResume = "job.resume"
	MethodJobSubmit = "job.submit"

	MethodOpsCancel  = "ops.cancel"
	MethodOpsClasses = "ops.classes"
	MethodOpsList    = "ops.list"

	MethodScheduleAdd     = "schedule.add"
	MethodScheduleGet     = "schedule.get"
	MethodScheduleHistory = "schedule.history"
	MethodScheduleList    = "schedule.list"
	MethodSchedulePause   = "schedule.pause"
	MethodScheduleRemove  = "schedule.remove"
	MethodScheduleResume  = "schedule.resume"
	MethodScheduleRun     = "schedule.run"

	MethodServerList   = "server.list"
	MethodServerStatus = "server.status"

	MethodUserAdd         = "user.add"
	MethodUserDelete      = "user.delete"
	MethodUserList        = "user.list"
	MethodUserTokenCreate = "user.token.create"
	MethodUserTokenList   = "user.token.list"
	MethodUserTokenRevoke = "user.token.revoke"

	MethodWebhookAdd        = "webhook.add"
	MethodWebhookDeliveries = "webhook.deliveries"
	MethodWebhookList       = "webhook.list"
	MethodWebhookRemove     = "webhook.remove"
	MethodWebhookTest       = "webhook.test"
)
