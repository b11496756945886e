--[[
  Starts a job's event log with its current monitor, unless the log has an entry already (job-events.ts):
  a job's first entries are written when someone follows it, and a worker may append at the same time.

  KEYS[1] the job's event stream
  ARGV[1] the monitor (JSON)   ARGV[2] how long the log is kept (ms)   ARGV[3] the pub/sub channel
  ARGV[4] the job id

  Returns the entry id, or false when the log had an entry.
]]
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local id = redis.call('XADD', KEYS[1], '*', 'm', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[4] .. ' ' .. id .. ' ' .. ARGV[1])
return id
