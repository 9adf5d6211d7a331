-- One wrk load class (scripts/load): MBK_METHOD MBK_PATH, with MBK_KEY as X-API-Key; when
-- MBK_UPLOAD names a file, its bytes are sent as the multipart field `file`. At the end one JSON
-- line with the figures scripts/load reports.
local method = os.getenv("MBK_METHOD") or "GET"
local path = os.getenv("MBK_PATH")
wrk.method = method
wrk.headers["X-API-Key"] = os.getenv("MBK_KEY")
local upload = os.getenv("MBK_UPLOAD")
if upload and upload ~= "" then
    local f = assert(io.open(upload, "rb"))
    local bytes = f:read("*a")
    f:close()
    local boundary = "mbk-load-boundary-7d1f"
    wrk.headers["Content-Type"] = "multipart/form-data; boundary=" .. boundary
    wrk.body = "--" .. boundary .. "\r\n"
        .. 'Content-Disposition: form-data; name="file"; filename="' .. upload:match("[^/]+$") .. '"\r\n'
        .. "Content-Type: application/octet-stream\r\n\r\n" .. bytes .. "\r\n--" .. boundary .. "--\r\n"
end

request = function()
    return wrk.format(method, path)
end

done = function(summary, latency, requests)
    local e = summary.errors
    io.write(string.format(
        '{"requests":%d,"duration_us":%d,"bytes":%d,"status_errors":%d,"socket_errors":%d,'
            .. '"p50_us":%d,"p95_us":%d,"p99_us":%d,"max_us":%d}\n',
        summary.requests, summary.duration, summary.bytes, e.status,
        e.connect + e.read + e.write + e.timeout,
        latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
end
