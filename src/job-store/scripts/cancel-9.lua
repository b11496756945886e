--[[
  The API's side of cancel (cancel.ts), one atomic decision against the job's control hash:
  - a job that has begun writing (`committed`) is refused;
  - a job a worker holds (in none of BullMQ's waiting structures) gets `cancel` set, which the worker's
    claim script sees before its next write;
  - a job no worker holds (waiting, prioritized, or delayed between retries) is taken out of BullMQ's
    waiting structures and finished as failed, with the Canceled record as its progress, in this script.
    No BullMQ API fails a job that is not active, and the cancel must be atomic with `committed`: so this
    script moves it by hand, on BullMQ's key layout as bullmq-layout.ts pins it (a contract test checks
    that layout against a real BullMQ job), releasing the FHIR service's deduplication key as BullMQ's
    own finishing script does.

  KEYS[1] the BullMQ job hash      KEYS[2] the job's control hash
  KEYS[3] wait   KEYS[4] paused    KEYS[5] delayed   KEYS[6] prioritized
  KEYS[7] failed KEYS[8] completed KEYS[9] BullMQ's events stream
  ARGV[1] job id
  ARGV[2] the job's progress as read before (the record is only replaced when unchanged)
  ARGV[3] the Canceled progress     ARGV[4] now (ms)   ARGV[5] failedReason
  ARGV[6] the cancel record (JSON)  ARGV[7] deduplication key prefix ('{prefix}:changes:de:')
  ARGV[8] how long the control record is kept (ms)

  Returns {outcome, detail}: missing, finished, {committed, step}, flagged, already, changed, finalized.
]]
local jobKey, control = KEYS[1], KEYS[2]
local jobId = ARGV[1]
if redis.call('EXISTS', jobKey) == 0 then return {'missing', ''} end
if redis.call('ZSCORE', KEYS[7], jobId) or redis.call('ZSCORE', KEYS[8], jobId) then return {'finished', ''} end
local committed = redis.call('HGET', control, 'committed')
if committed then return {'committed', committed} end
local waiting = redis.call('LPOS', KEYS[3], jobId) or redis.call('LPOS', KEYS[4], jobId)
  or redis.call('ZSCORE', KEYS[5], jobId) or redis.call('ZSCORE', KEYS[6], jobId)
if not waiting then
  if redis.call('HSETNX', control, 'cancel', ARGV[6]) == 0 then return {'already', ''} end
  redis.call('PEXPIRE', control, ARGV[8])
  return {'flagged', ''}
end
local current = redis.call('HGET', jobKey, 'progress') or ''
if current ~= ARGV[2] then return {'changed', ''} end
redis.call('LREM', KEYS[3], 0, jobId)
redis.call('LREM', KEYS[4], 0, jobId)
redis.call('ZREM', KEYS[5], jobId)
redis.call('ZREM', KEYS[6], jobId)
redis.call('HSET', jobKey, 'progress', ARGV[3], 'failedReason', ARGV[5], 'finishedOn', ARGV[4])
redis.call('ZADD', KEYS[7], ARGV[4], jobId)
local deid = redis.call('HGET', jobKey, 'deid')
if deid then
  local dedupKey = ARGV[7] .. deid
  if redis.call('GET', dedupKey) == jobId then redis.call('DEL', dedupKey) end
end
redis.call('HSET', control, 'cancel', ARGV[6], 'committed', 'Canceled')
redis.call('PEXPIRE', control, ARGV[8])
redis.call('XADD', KEYS[9], '*', 'event', 'failed', 'jobId', jobId, 'failedReason', ARGV[5], 'prev', 'waiting')
return {'finalized', ''}
