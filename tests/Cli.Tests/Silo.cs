using System.Diagnostics;
using System.Text.RegularExpressions;
using ControlPlane.Contracts.Client;
using ControlPlane.Contracts.V1;

namespace ControlPlane.Cli.Tests;

/// <summary>
/// A real silo process on a fresh data directory and a free port (read from its "Now listening on:"
/// line), killed when disposed, also when the test fails. Its embedded DNS server is off unless
/// <see cref="StartAsync"/> gets a DNS port.
/// </summary>
internal sealed partial class Silo : IAsyncDisposable
{
    private Process _process;
    private readonly TempDirectory _data;
    private readonly List<string> _output;

    private Silo(Process process, TempDirectory data, string address, List<string> output, ClientTls? tls)
    {
        _process = process;
        _data = data;
        _output = output;
        Address = address;
        Client = new ControlPlaneClient(address, tls: tls);
    }

    /// <summary>The silo's data directory (its audit log is audit.jsonl there).</summary>
    public string DataDirectory => _data.Path;

    /// <summary>"http://127.0.0.1:port" ("https://" with TLS).</summary>
    public string Address { get; }

    /// <summary>The API client, for checking what netctl did.</summary>
    public ControlPlaneClient Client { get; }

    /// <param name="dnsPort">A port for the embedded DNS server (0: none). The DNS server follows the API
    /// on a fixed address, so the silo then gets a fixed port as well.</param>
    /// <param name="pki">A directory of netctl pki files: the silo serves mutual TLS with silo.crt (and
    /// ca.crt); <see cref="Client"/> calls as admin.crt.</param>
    /// <param name="settings">More --Section:Key=value settings.</param>
    public static async Task<Silo> StartAsync(int dnsPort = 0, string? pki = null, params string[] settings)
    {
        var apiPort = dnsPort == 0 ? 0 : FreePort(dnsPort + 1);
        var data = new TempDirectory();
        string[] args =
        [
            Path.Combine(AppContext.BaseDirectory, "ControlPlane.Silo.dll"), $"--Silo:DataDirectory={data.Path}",
            "--ControlPlane:ServiceIpv6Cidr=fd00:96::/108", "--ControlPlane:NodeLeaseDuration=00:10:00",
            dnsPort == 0 ? "--Dns:Enabled=false" : $"--Dns:Listen=127.0.0.1:{dnsPort}",
            .. pki is null ? Array.Empty<string>() :
                [$"--Tls:Certificate={pki}/silo.crt", $"--Tls:Key={pki}/silo.key", $"--Tls:ClientCa={pki}/ca.crt"],
            .. settings,
        ];
        var output = new List<string>();
        try
        {
            var (process, address) = await LaunchAsync([.. args, $"--Silo:Port={apiPort}"], output);
            return new Silo(process, data, address, output, pki is null ? null : new ClientTls($"{pki}/ca.crt", $"{pki}/admin.crt", $"{pki}/admin.key")) { _args = args };
        }
        catch
        {
            data.Dispose();
            throw;
        }
    }

    private string[] _args = [];

    /// <summary>Stops the silo with SIGTERM and starts it again on its data directory and port.</summary>
    public async Task RestartAsync()
    {
        await StopAsync();
        await StartAgainAsync();
    }

    /// <summary>Starts the stopped silo again on its data directory and port.</summary>
    public async Task StartAgainAsync() =>
        (_process, _) = await LaunchAsync([.. _args, $"--Silo:Port={new Uri(Address).Port}"], _output);

    /// <summary>Kills the silo (SIGKILL: no shutdown, its connections break) and waits until it is gone.</summary>
    public async Task KillAsync()
    {
        _process.Kill();
        await _process.WaitForExitAsync();
    }

    /// <summary>Starts the stopped silo again on its data directory at <paramref name="port"/>; returns its address.</summary>
    public async Task<string> StartAgainAtAsync(int port)
    {
        string address;
        (_process, address) = await LaunchAsync([.. _args, $"--Silo:Port={port}"], _output);
        return address;
    }

    /// <summary>
    /// Stops the silo with SIGTERM and starts it again on its data directory at another free port,
    /// where clients of <see cref="Address"/> do not find it; returns that address.
    /// <see cref="RestartAsync"/> brings it back to <see cref="Address"/>.
    /// </summary>
    public async Task<string> RestartElsewhereAsync()
    {
        await StopAsync();
        string address;
        (_process, address) = await LaunchAsync([.. _args, "--Silo:Port=0"], _output);
        return address;
    }

    /// <summary>Stops the silo with SIGTERM (a clean shutdown) and waits until it has exited.</summary>
    public async Task StopAsync()
    {
        using (var kill = Process.Start("kill", ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])!) await kill.WaitForExitAsync();
        await _process.WaitForExitAsync();
    }

    private static async Task<(Process Process, string Address)> LaunchAsync(string[] args, List<string> output)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args) info.ArgumentList.Add(arg);
        var process = Process.Start(info)!;
        var listening = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        void Read(string? line)
        {
            if (line is null) return;
            lock (output) output.Add(line);
            if (ListeningLine().Match(line) is { Success: true } match) listening.TrySetResult(match.Groups[1].Value);
        }
        process.OutputDataReceived += (_, e) => Read(e.Data);
        process.ErrorDataReceived += (_, e) => Read(e.Data);
        process.EnableRaisingEvents = true;
        process.Exited += (_, _) =>
        {
            // Exited can come before the last lines were read: WaitForExit() waits for the end of both streams.
            process.WaitForExit();
            lock (output) listening.TrySetException(new InvalidOperationException("the silo exited:\n" + string.Join("\n", output)));
        };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            return (process, await listening.Task.WaitAsync(TimeSpan.FromSeconds(60)));
        }
        catch
        {
            process.Kill();
            await process.WaitForExitAsync();
            process.Dispose();
            throw;
        }
    }

    /// <summary>A free TCP and UDP port in 26000-26999 (the range this machine gives us), from <paramref name="first"/> on.</summary>
    public static int FreePort(int first) => Ports.FreeTcpAndUdp(first, 26999);

    /// <summary>
    /// Every object a manifest can write, with its etag ("kind ns/name etag", sorted): equal
    /// snapshots mean nothing was written. Derived objects (service endpoint sets, imports) are
    /// left out: the silo's controllers write them on their own schedule after an apply. For the
    /// same reason a service export is named by its uid, not its etag (the controller writes its
    /// conditions); an apply can only create it or change its labels.
    /// </summary>
    public async Task<List<string>> ObjectsAsync()
    {
        var all = new ListRequest { PageSize = 1000 };
        IEnumerable<string> Named(string kind, IEnumerable<ObjectMeta> metas) => metas.Select(m => $"{kind} {m.Namespace}/{m.Name} {m.Etag}");
        return
        [
            .. Named("namespace", (await Client.Namespaces.ListAsync(all)).Namespaces.Select(o => o.Metadata)),
            .. Named("network", (await Client.Networks.ListAsync(all)).Networks.Select(o => o.Metadata)),
            .. Named("node", (await Client.Nodes.ListAsync(all)).Nodes.Select(o => o.Metadata)),
            .. Named("endpoint", (await Client.Endpoints.ListAsync(all)).Endpoints.Select(o => o.Metadata)),
            .. Named("service", (await Client.Services.ListAsync(all)).Services.Select(o => o.Metadata)),
            .. Named("networkpolicy", (await Client.NetworkPolicies.ListAsync(all)).NetworkPolicies.Select(o => o.Metadata)),
            .. Named("clusterpeer", (await Client.ClusterPeers.ListAsync(all)).ClusterPeers.Select(o => o.Metadata)),
            .. (await Client.ServiceExports.ListAsync(all)).ServiceExports.Select(o => $"serviceexport {o.Metadata.Namespace}/{o.Metadata.Name} {o.Metadata.Uid}"),
        ];
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        if (!_process.HasExited)
        {
            _process.Kill();
            await _process.WaitForExitAsync();
        }
        _process.Dispose();
        _data.Dispose();
    }

    public override string ToString()
    {
        lock (_output) return string.Join("\n", _output);
    }

    [GeneratedRegex(@"Now listening on: (https?://127\.0\.0\.1:\d+)")]
    private static partial Regex ListeningLine();
}
