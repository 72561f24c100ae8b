-- Seed 000's API on Redis HyperLogLogs, one key per GMT day (bench/seed000/nginx.conf).
local redis = require("nginx.redis")

local M = {}
local redisPort = 6379

function M.configure(port)
  redisPort = port
end

local function connect()
  local red = redis:new()
  red:set_timeout(2000)
  local ok, err = red:connect("127.0.0.1", redisPort)
  if not ok then
    ngx.log(ngx.ERR, "redis: ", err)
    return ngx.exit(503)
  end
  return red
end

-- Back to the pool: one connection per concurrent request at most, reused.
local function release(red)
  red:set_keepalive(60000, 256)
end

local function dayKey(seconds)
  return "uniques:" .. os.date("!%Y%m%d", seconds)
end

-- d: YYYY-MM-DD or YYYYMMDD; default today (GMT). Returns the day's start in seconds.
local function parseDay(d)
  if not d then
    local now = ngx.time()
    return now - now % 86400
  end
  local y, m, dd = string.match(d, "^(%d%d%d%d)-?(%d%d)-?(%d%d)$")
  if not y then return nil end
  return os.time({ year = tonumber(y), month = tonumber(m), day = tonumber(dd), hour = 0 }) -
    os.time({ year = 1970, month = 1, day = 1, hour = 0 })
end

function M.collect()
  local args = ngx.req.get_uri_args()
  local cid = args.cid
  if type(cid) ~= "string" or #cid == 0 or #cid > 256 then
    return ngx.exit(400)
  end
  local seconds = tonumber(args.d) or ngx.time()
  local red = connect()
  local ok, err = red:pfadd(dayKey(seconds), cid)
  if not ok then
    ngx.log(ngx.ERR, "redis: ", err)
    return ngx.exit(503)
  end
  release(red)
  ngx.status = 200
  return ngx.exit(200)
end

local function count(days)
  local day = parseDay(ngx.var.arg_d)
  if not day then return ngx.exit(400) end
  local keys = {}
  for i = 0, days - 1 do
    keys[#keys + 1] = dayKey(day - i * 86400)
  end
  local red = connect()
  local n, err = red:pfcount(unpack(keys))
  if not n then
    ngx.log(ngx.ERR, "redis: ", err)
    return ngx.exit(503)
  end
  release(red)
  ngx.header.content_type = "text/plain"
  ngx.say(n)
end

function M.daily() return count(1) end
function M.monthly() return count(30) end

return M
