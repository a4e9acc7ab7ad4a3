using System.Diagnostics;
using System.Net;
using ControlPlane.Contracts.Client;
using ControlPlane.Contracts.V1;
using Grpc.Core;

namespace ControlPlane.Observability.Tests;

/// <summary>
/// A silo, a node agent and a DNS server as separate processes, each with its Prometheus
/// listener. The silo serves its API on a unix socket and /metrics on a loopback health port; the
/// agent runs in a network namespace of its own ("ob" + id) joined to the root namespace by a veth
/// pair (10.251.N.1 here, 10.251.N.2 there), which is where its /metrics is scraped and where it
/// reaches an OTLP receiver. Everything is removed at the end.
/// </summary>
internal sealed class ObservedCluster : IAsyncDisposable
{
    public const string NodeName = "ob-node";

    private readonly string _id = Guid.NewGuid().ToString("N")[..6];
    private readonly List<Process> _processes = [];
    private readonly List<(string Name, List<string> Lines)> _logs = [];
    private readonly string _data;
    private bool _namespaceAdded;

    private ObservedCluster()
    {
        _data = Path.Combine(Path.GetTempPath(), "ob-" + _id);
        Directory.CreateDirectory(_data);
        Subnet = Random.Shared.Next(1, 255);
    }

    public int Subnet { get; }

    /// <summary>The root namespace's end of the veth pair: OTLP receivers listen here for the agent.</summary>
    public IPAddress HostSide => IPAddress.Parse($"10.251.{Subnet}.1");

    public IPAddress AgentSide => IPAddress.Parse($"10.251.{Subnet}.2");

    public string Namespace => "ob" + _id;

    public string SiloSocket => Path.Combine(_data, "silo.sock");

    public int SiloMetricsPort { get; } = Ports.Free();

    public int AgentMetricsPort { get; } = 23464; // inside the agent's own namespace, on its own address

    public int DnsMetricsPort { get; } = Ports.Free();

    public int DnsPort { get; } = Ports.Free();

    public ControlPlaneClient Client { get; private set; } = null!;

    /// <summary>Starts the three processes; <paramref name="environment"/> gives each (by name: silo, agent, dns) variables of its own, OTEL_* for instance.</summary>
    public static async Task<ObservedCluster> StartAsync(Func<ObservedCluster, string, IDictionary<string, string>?>? environment = null)
    {
        var cluster = new ObservedCluster();
        try
        {
            cluster.AddNamespace();
            var bin = AppContext.BaseDirectory;
            cluster.Start("silo", "dotnet", [Path.Combine(bin, "ControlPlane.Silo.dll"), "--Silo:Port=0", $"--Silo:DataDirectory={Path.Combine(cluster._data, "silo")}",
                $"--Silo:UnixSocket={cluster.SiloSocket}", $"--Silo:HealthPort={cluster.SiloMetricsPort}", "--Dns:Enabled=false",
                "--Logging:LogLevel:Default=Warning"], environment?.Invoke(cluster, "silo"));
            cluster.Client = new ControlPlaneClient("unix:" + cluster.SiloSocket);
            await cluster.WaitForSiloAsync();
            cluster.Start("agent", "ip", ["netns", "exec", cluster.Namespace, "dotnet", Path.Combine(bin, "ControlPlane.NodeAgent.dll"),
                $"--Agent:ControlPlane=unix:{cluster.SiloSocket}", $"--Agent:NodeName={NodeName}", $"--Agent:UnderlayIp={cluster.AgentSide}",
                $"--Agent:AttachSocket={Path.Combine(cluster._data, "agent.sock")}", $"--Metrics:Listen={cluster.AgentSide}:{cluster.AgentMetricsPort}",
                "--Logging:LogLevel:Default=Warning"], environment?.Invoke(cluster, "agent"));
            cluster.Start("dns", "dotnet", [Path.Combine(bin, "ControlPlane.DnsServer.dll"), $"--Dns:Listen=127.0.0.1:{cluster.DnsPort}",
                $"--Dns:ControlPlane=unix:{cluster.SiloSocket}", $"--Metrics:Listen=127.0.0.1:{cluster.DnsMetricsPort}",
                "--Logging:LogLevel:Default=Warning"], environment?.Invoke(cluster, "dns"));
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    private void AddNamespace()
    {
        Shell.Must("ip", "netns", "add", Namespace);
        _namespaceAdded = true;
        var host = Namespace + "r";
        // Created inside the namespace, so deleting the namespace removes both ends.
        Shell.Must("ip", "-n", Namespace, "link", "add", "eth0", "type", "veth", "peer", "name", host, "netns", "1");
        Shell.Must("ip", "addr", "add", $"{HostSide}/30", "dev", host);
        Shell.Must("ip", "link", "set", host, "up");
        Shell.Must("ip", "-n", Namespace, "addr", "add", $"{AgentSide}/30", "dev", "eth0");
        Shell.Must("ip", "-n", Namespace, "link", "set", "eth0", "up");
        Shell.Must("ip", "-n", Namespace, "link", "set", "lo", "up");
    }

    private void Start(string name, string file, string[] args, IDictionary<string, string>? environment)
    {
        var info = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args) info.ArgumentList.Add(arg);
        foreach (var (key, value) in environment ?? new Dictionary<string, string>()) info.Environment[key] = value;
        var process = Process.Start(info)!;
        var lines = new List<string>();
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (lines) lines.Add(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (lines) lines.Add(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _processes.Add(process);
        _logs.Add((name, lines));
    }

    /// <summary>Everything the processes wrote, for a failing test's message.</summary>
    public string Logs() => string.Join("\n", _logs.Select(l => { lock (l.Lines) return $"--- {l.Name}\n" + string.Join("\n", l.Lines.TakeLast(40)); }));

    private async Task WaitForSiloAsync()
    {
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        while (true)
        {
            try
            {
                await Client.Namespaces.GetAsync("", "default", Calls.Until(deadline.Token));
                return;
            }
            catch (RpcException e) when (e.StatusCode is StatusCode.Unavailable or StatusCode.NotFound && !deadline.IsCancellationRequested)
            {
                if (e.StatusCode == StatusCode.NotFound) return;
                if (_processes[0].HasExited) throw new InvalidOperationException("the silo exited:\n" + Logs());
                await Task.Delay(100, deadline.Token);
            }
        }
    }

    /// <summary>Waits until the agent has registered its node.</summary>
    public async Task WaitForNodeAsync(TimeSpan timeout)
    {
        using var deadline = new CancellationTokenSource(timeout);
        while (true)
        {
            try
            {
                await Client.Nodes.GetAsync("", NodeName, Calls.Until(deadline.Token));
                return;
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.NotFound && !deadline.IsCancellationRequested)
            {
                await Task.Delay(100, deadline.Token);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"node {NodeName} did not register within {timeout}:\n" + Logs());
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var process in Enumerable.Reverse(_processes))
        {
            try
            {
                if (!process.HasExited)
                {
                    process.Kill(entireProcessTree: true);
                    await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(20));
                }
            }
            catch (Exception e) when (e is InvalidOperationException or TimeoutException)
            {
            }
            process.Dispose();
        }
        Client?.Dispose();
        if (_namespaceAdded) Shell.Run("ip", "netns", "del", Namespace);
        try
        {
            Directory.Delete(_data, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
