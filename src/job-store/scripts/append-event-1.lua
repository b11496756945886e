--[[
  Appends a status monitor to its job's event log and publishes the same entry (job-events.ts): stream
  order and publish order are the same, and an entry is in the stream before anyone can hear of it.

  KEYS[1] the job's event stream
  ARGV[1] entries kept (approximately)   ARGV[2] the monitor (JSON)   ARGV[3] how long the log is kept (ms)
  ARGV[4] the pub/sub channel            ARGV[5] the job id

  Returns the entry id.
]]
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'm', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PUBLISH', ARGV[4], ARGV[5] .. ' ' .. id .. ' ' .. ARGV[2])
return id
