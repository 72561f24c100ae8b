-- wrk script of npm run bench (bench/wrk.ts): every request carries a new random UUID,
-- as seed 000's clients send. The mode comes after `--` on wrk's command line:
--   collect            GET /collect?cid=<uuid>
--   analytics          POST /analytics?timestamp=<now ms>&user=<uuid>&event=click|impression
--   events <n> [key]   POST /v1/events, a JSON batch of n events of n random users,
--                      with Authorization: Bearer <key> when a key is given
--   events-dims <n> [key]  the same, each event also carrying every standard dimension
--                      (referrer URL, utm_*, country, device, browser, os) and 3
--                      properties (plan, ab.variant, article), drawn from small lists
--   events-sites <n> <sites>  POST /v1/events, n events of n random users, each of one
--                      of <sites> sites (site-1 ... site-<sites>) drawn at random
--   event [key]        POST /v1/events, one pageview of a random user (a server-side client)
--   tracked            POST /v1/events as the tracker script sends it: text/plain, one
--                      pageview without user (the service derives the visitor id), with a
--                      referrer, sometimes a utm_source, the screen width, a browser's
--                      User-Agent and X-Forwarded-For from a random public IPv4 address
--                      (the bench's service trusts its loopback proxy)
-- At the end it prints one line, WRK_JSON {...}, that bench/wrk.ts reads.

local random = math.random
local format = string.format
local concat = table.concat

local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
  table.insert(threads, thread)
end

local mode = "collect"
local batch = 1000
local sites = 1
local headers = { ["Content-Type"] = "application/json" }

local function uuid()
  return format("%04x%04x-%04x-4%03x-%04x-%04x%04x%04x",
    random(0, 0xffff), random(0, 0xffff), random(0, 0xffff), random(0, 0xfff),
    random(0x8000, 0xbfff), random(0, 0xffff), random(0, 0xffff), random(0, 0xffff))
end

function init(args)
  mode = args[1] or "collect"
  batch = tonumber(args[2] or "1000")
  if mode == "events-sites" then sites = tonumber(args[3] or "1")
  elseif args[3] then headers["Authorization"] = "Bearer " .. args[3] end
  -- A seed of its own per thread and run: two threads never send the same ids.
  math.randomseed(os.time() * 1000 + (id or 0) * 7919 + math.floor(os.clock() * 1e6))
end

local function nowMs()
  return format("%d", os.time() * 1000)
end

local function pick(list)
  return list[random(1, #list)]
end

local referrers = { "https://www.google.com/search?q=headcount", "https://news.ycombinator.com/item?id=1",
  "https://t.co/abc", "https://duckduckgo.com/", "https://blog7.example.org/post/3" }
local sources = { "newsletter", "twitter", "google", "facebook" }
local mediums = { "email", "social", "cpc" }
local campaigns = { "black-friday", "spring-sale", "launch-week", "retargeting", "webinar", "weekly-digest" }
local countries = { "US", "DE", "IN", "GB", "FR", "BR", "CA", "JP", "NL", "ES" }
local devices = { "desktop", "mobile", "tablet" }
local browsers = { "Chrome", "Safari", "Edge", "Firefox", "Samsung Internet" }
local oses = { "Windows", "iOS", "Android", "macOS", "Linux" }
local plans = { "free", "pro", "team" }
local agents = {
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
  "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
  "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
  "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
  "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
}
local widths = { 390, 414, 768, 1280, 1440, 1920 }

-- Every standard dimension and 3 properties, as a JSON fragment starting with a comma.
local function dimensions()
  return format(',"referrer":"%s","utm_source":"%s","utm_medium":"%s","utm_campaign":"%s","utm_content":"%s",' ..
    '"utm_term":"term-%d","country":"%s","device":"%s","browser":"%s","os":"%s",' ..
    '"props":{"plan":"%s","ab.variant":"%s","article":"article-%d"}',
    pick(referrers), pick(sources), pick(mediums), pick(campaigns), random() < 0.5 and "banner" or "text",
    random(1, 20), pick(countries), pick(devices), pick(browsers), pick(oses),
    pick(plans), random() < 0.5 and "a" or "b", random(1, 200))
end

function request()
  if mode == "collect" then
    return wrk.format("GET", "/collect?cid=" .. uuid())
  elseif mode == "analytics" then
    local event = random() < 0.2 and "click" or "impression"
    return wrk.format("POST", "/analytics?timestamp=" .. nowMs() .. "&user=" .. uuid() .. "&event=" .. event)
  elseif mode == "events" or mode == "events-dims" or mode == "events-sites" then
    local now = nowMs()
    local parts = {}
    local dims = mode == "events-dims"
    local spread = mode == "events-sites"
    for i = 1, batch do
      parts[i] = '{"user":"' .. uuid() .. '","kind":"' .. (random() < 0.2 and "click" or "impression") .. '","time":' .. now ..
        (dims and dimensions() or "") .. (spread and format(',"site":"site-%d"', random(1, sites)) or "") .. '}'
    end
    local body = '{"events":[' .. concat(parts, ",") .. ']}'
    return wrk.format("POST", "/v1/events", headers, body)
  elseif mode == "event" then
    local body = '{"events":[{"user":"' .. uuid() .. '","kind":"pageview","page":"/p/' .. random(1, 50) .. '"}]}'
    return wrk.format("POST", "/v1/events", headers, body)
  elseif mode == "tracked" then
    local source = random() < 0.12 and (',"utm_source":"' .. pick(sources) .. '"') or ""
    local body = '{"events":[{"kind":"pageview","page":"/p/' .. random(1, 50) .. '","screen_width":' .. pick(widths) ..
      ',"referrer":"' .. pick(referrers) .. '"' .. source .. '}]}'
    return wrk.format("POST", "/v1/events", {
      ["Content-Type"] = "text/plain",
      ["User-Agent"] = pick(agents),
      ["X-Forwarded-For"] = format("%d.%d.%d.%d", random(11, 99), random(0, 255), random(0, 255), random(1, 254)),
    }, body)
  end
  return wrk.format("GET", "/")
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(format(
    'WRK_JSON {"requests":%d,"durationUs":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,' ..
    '"p50Us":%d,"p90Us":%d,"p99Us":%d,"maxUs":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
