using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.Json;

namespace ControlPlane.Observability.Tests;

/// <summary>
/// A real Prometheus (/usr/bin/prometheus) on a loopback port with a storage directory of its own,
/// scraping the given targets every second; values are read back through its HTTP API.
/// </summary>
internal sealed class PrometheusServer : IDisposable
{
    private readonly Process _process;
    private readonly string _directory;
    private readonly HttpClient _http = new();
    private readonly List<string> _log = [];

    public PrometheusServer(IReadOnlyDictionary<string, string> targets)
    {
        _directory = Path.Combine(Path.GetTempPath(), "ob-prometheus-" + Guid.NewGuid().ToString("N")[..6]);
        Directory.CreateDirectory(_directory);
        var config = "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\nscrape_configs:\n"
            + string.Concat(targets.Select(t => $"  - job_name: {t.Key}\n    static_configs:\n      - targets: ['{t.Value}']\n"));
        File.WriteAllText(Path.Combine(_directory, "prometheus.yml"), config);
        Port = Ports.Free();
        var info = new ProcessStartInfo("/usr/bin/prometheus") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in (string[])[$"--config.file={Path.Combine(_directory, "prometheus.yml")}", $"--storage.tsdb.path={Path.Combine(_directory, "data")}",
                     $"--web.listen-address=127.0.0.1:{Port}", "--log.level=warn"]) info.ArgumentList.Add(arg);
        _process = Process.Start(info)!;
        _process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (_log) _log.Add(e.Data); };
        _process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (_log) _log.Add(e.Data); };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    public int Port { get; }

    public string Log()
    {
        lock (_log) return string.Join("\n", _log.TakeLast(30));
    }

    /// <summary>The samples of an instant query: labels and value of each series (empty while Prometheus starts).</summary>
    public async Task<List<(Dictionary<string, string> Labels, double Value)>> QueryAsync(string query)
    {
        try
        {
            using var response = await _http.GetAsync($"http://127.0.0.1:{Port}/api/v1/query?query={Uri.EscapeDataString(query)}");
            if (!response.IsSuccessStatusCode) return [];
            using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
            var samples = new List<(Dictionary<string, string>, double)>();
            foreach (var series in json.RootElement.GetProperty("data").GetProperty("result").EnumerateArray())
            {
                var labels = series.GetProperty("metric").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString()!);
                samples.Add((labels, double.Parse(series.GetProperty("value")[1].GetString()!, CultureInfo.InvariantCulture)));
            }
            return samples;
        }
        catch (HttpRequestException)
        {
            return [];
        }
    }

    /// <summary>Every metric name Prometheus has stored.</summary>
    public async Task<HashSet<string>> NamesAsync()
    {
        using var json = JsonDocument.Parse(await _http.GetStringAsync($"http://127.0.0.1:{Port}/api/v1/label/__name__/values"));
        return json.RootElement.GetProperty("data").EnumerateArray().Select(n => n.GetString()!).ToHashSet();
    }

    /// <summary>Polls <paramref name="query"/> until its samples satisfy <paramref name="done"/>; returns them.</summary>
    public async Task<List<(Dictionary<string, string> Labels, double Value)>> WaitAsync(string query, Func<List<(Dictionary<string, string> Labels, double Value)>, bool> done,
        TimeSpan timeout, Func<string> context)
    {
        var deadline = Stopwatch.StartNew();
        var samples = new List<(Dictionary<string, string>, double)>();
        while (deadline.Elapsed < timeout)
        {
            samples = await QueryAsync(query);
            if (done(samples)) return samples;
            await Task.Delay(250);
        }
        throw new TimeoutException($"Prometheus query '{query}' did not reach the expected value within {timeout}; last: "
            + string.Join(", ", samples.Select(s => "{" + string.Join(",", s.Item1.Select(l => $"{l.Key}={l.Value}")) + "} " + s.Item2))
            + "\nprometheus:\n" + Log() + "\n" + context());
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
            _process.WaitForExit();
        }
        _process.Dispose();
        _http.Dispose();
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
