package redisstore

import "github.com/redis/go-redis/v9"

// takeLock sets the lock key KEYS[1] to the owner value ARGV[1] with a TTL
// of ARGV[2] milliseconds, if the key is free, as SET NX PX would, or if it
// already holds ARGV[1]: go-redis sends a command again when its reply was
// lost, and the lock that the first one took is then the caller's own.
// With the lock, it reads the token key KEYS[2], in the same atomic step:
// that is the value the new holder's writes are fenced by (see fencedWrite).
// It returns 0 when another owner holds the lock; otherwise {1, token}, or
// {1} when there is no token.
var takeLock = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[1] then
	return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local tok = redis.call('GET', KEYS[2])
if tok then
	return {1, tok}
end
return {1}
`)

// fencedWrite writes the token key for a holder of the lock, unless the lock
// expired and the token changed since the holder took the lock or last
// wrote it: then a newer holder has saved, and its token must stand. Redis
// runs a script atomically, so nothing can come between the checks and the
// write.
//
// KEYS[1] the token key, KEYS[2] the lock key.
// ARGV[1] the holder's owner value.
// ARGV[2] the holder's fence, what the token key held when it took the lock
// or last wrote it: "value" (ARGV[3]) or "absent".
// ARGV[4] the new value, or "" to delete the key.
// ARGV[5] the key's TTL in milliseconds, or 0 for none.
// It returns 1 when it wrote, 0 when it refused.
var fencedWrite = redis.NewScript(`
if redis.call('GET', KEYS[2]) ~= ARGV[1] then
	local cur = redis.call('GET', KEYS[1])
	local unchanged = (ARGV[2] == 'value' and cur == ARGV[3]) or (ARGV[2] == 'absent' and cur == false)
	if not unchanged then
		return 0
	end
end
if ARGV[4] == '' then
	redis.call('DEL', KEYS[1])
elseif tonumber(ARGV[5]) > 0 then
	redis.call('SET', KEYS[1], ARGV[4], 'PX', ARGV[5])
else
	redis.call('SET', KEYS[1], ARGV[4])
end
return 1
`)

// releaseLock deletes the lock key KEYS[1] only if it still holds the owner
// value ARGV[1]. It returns 1 when it deleted, 0 when the lock had expired
// (and may belong to someone else now).
var releaseLock = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
	return redis.call('DEL', KEYS[1])
end
return 0
`)
