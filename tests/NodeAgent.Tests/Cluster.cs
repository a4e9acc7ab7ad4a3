using System.Diagnostics;
using ControlPlane.Contracts.Client;
using Grpc.Core;
using ControlPlane.Contracts.V1;
using ControlPlane.Silo.Hosting;
using Microsoft.AspNetCore.Builder;

namespace ControlPlane.NodeAgent.Tests;

/// <summary>
/// A test cluster: a silo in this process on a unix socket, an underlay bridge in a "fabric"
/// namespace, and hosts as namespaces on that bridge (10.99.0.0/24), each running a node agent
/// process. The root namespace gets no address and no forwarding; everything is removed at the end.
/// </summary>
internal sealed class Cluster : IAsyncDisposable
{
    private readonly string _id = Guid.NewGuid().ToString("N")[..6];
    private readonly List<string> _namespaces = [];
    private readonly Dictionary<int, Process> _agents = [];
    private readonly Dictionary<int, List<string>> _logs = [];
    private readonly SemaphoreSlim _logged = new(0);
    private readonly string _data;
    private readonly string[] _agentArgs;
    private readonly Layout _layout;
    private WebApplication? _silo;

    /// <summary>
    /// Where a cluster's hosts sit: on its own underlay bridge, or (for a second cluster of a
    /// ClusterSet) on another cluster's, with host addresses from 10.99.0.(first + n - 1). Its
    /// namespaces and underlay ports are named <c>Prefix</c> + a letter + the cluster's id.
    /// </summary>
    public sealed record Layout(int Hosts, string? SharedFabric = null, int FirstHostAddress = 1, string[]? SiloArgs = null, string Prefix = "cp");

    private Cluster(string[] agentArgs, Layout layout)
    {
        _agentArgs = agentArgs;
        _layout = layout;
        _data = Path.Combine(Path.GetTempPath(), "cp-cluster-" + _id);
        SiloSocket = Path.Combine(Path.GetTempPath(), $"cp-{_id}.sock");
    }

    public string SiloSocket { get; }

    public ControlPlaneClient Client { get; private set; } = null!;

    public string Fabric => _layout.SharedFabric ?? _layout.Prefix + "f" + _id;

    /// <summary>Host n's underlay address.</summary>
    public string HostAddress(int n) => $"10.99.0.{_layout.FirstHostAddress + n - 1}";

    public string Host(int n) => $"{_layout.Prefix}h{_id}{n}";

    public string AgentSocket(int n) => Path.Combine(Path.GetTempPath(), $"cp-{_id}-agent{n}.sock");

    /// <summary>Starts the silo and <paramref name="hosts"/> agents, each with <paramref name="agentArgs"/> added to its command line.</summary>
    public static Task<Cluster> StartAsync(int hosts, params string[] agentArgs) => StartAsync(new Layout(hosts), agentArgs);

    public static async Task<Cluster> StartAsync(Layout layout, params string[] agentArgs)
    {
        var cluster = new Cluster(agentArgs, layout);
        try
        {
            await cluster.StartSiloAsync();
            if (layout.SharedFabric is null)
            {
                cluster.AddNamespace(cluster.Fabric);
                Shell.Must("ip", "-n", cluster.Fabric, "link", "add", "br0", "type", "bridge");
                Shell.Must("ip", "-n", cluster.Fabric, "link", "set", "br0", "up");
            }
            for (var n = 1; n <= layout.Hosts; n++)
            {
                var host = cluster.Host(n);
                var port = $"{layout.Prefix}h{cluster._id}{n}";
                cluster.AddNamespace(host);
                Shell.Must("ip", "-n", cluster.Fabric, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", host);
                Shell.Must("ip", "-n", cluster.Fabric, "link", "set", port, "master", "br0", "up");
                Shell.Must("ip", "-n", host, "addr", "add", $"{cluster.HostAddress(n)}/24", "dev", "eth0");
                Shell.Must("ip", "-n", host, "link", "set", "eth0", "up");
                Shell.Must("ip", "-n", host, "link", "set", "lo", "up");
                cluster.StartAgent(n);
            }
            cluster.Client = new ControlPlaneClient("unix:" + cluster.SiloSocket);
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    public async Task StartSiloAsync()
    {
        _silo = SiloApp.Build(["--Silo:Port=0", $"--Silo:DataDirectory={_data}", $"--Silo:UnixSocket={SiloSocket}",
            "--Logging:LogLevel:Default=Warning", "--Dns:Enabled=false", "--ControlPlane:NodeLeaseDuration=00:00:05", .. _layout.SiloArgs ?? []]);
        await _silo.StartAsync();
    }

    public async Task StopSiloAsync()
    {
        if (_silo is null) return;
        await _silo.StopAsync();
        await _silo.DisposeAsync();
        _silo = null;
    }

    public void StartAgent(int n)
    {
        var info = new ProcessStartInfo("ip") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in (string[])["netns", "exec", Host(n), "dotnet", Path.Combine(AppContext.BaseDirectory, "ControlPlane.NodeAgent.dll"),
                     $"--Agent:ControlPlane=unix:{SiloSocket}", $"--Agent:NodeName=host-{n}", $"--Agent:UnderlayIp={HostAddress(n)}",
                     $"--Agent:AttachSocket={AgentSocket(n)}", "--Logging:LogLevel:Default=Warning", "--Logging:LogLevel:ControlPlane.NodeAgent.Sync=Information", "--Logging:LogLevel:ControlPlane.NodeAgent.Table=Information", .. _agentArgs]) info.ArgumentList.Add(arg);
        var process = Process.Start(info)!;
        var log = _logs.TryGetValue(n, out var existing) ? existing : _logs[n] = [];
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (log) log.Add(e.Data);
            _logged.Release();
        };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (log) log.Add(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _agents[n] = process;
    }

    /// <summary>Everything host n's agent logged (across restarts), for a failing test's message.</summary>
    public string Log(int n)
    {
        var log = _logs[n];
        lock (log) return string.Join('\n', log);
    }

    /// <summary>Lines host n's agent logged (across restarts) that contain <paramref name="text"/>.</summary>
    public int LogLines(int n, string text)
    {
        var log = _logs[n];
        lock (log) return log.Count(l => l.Contains(text, StringComparison.Ordinal));
    }

    /// <summary>Waits until host n's agent has logged <paramref name="text"/> <paramref name="count"/> times.</summary>
    public async Task WaitForLogAsync(int n, string text, int count, TimeSpan timeout)
    {
        using var deadline = new CancellationTokenSource(timeout);
        while (LogLines(n, text) < count)
        {
            await _logged.WaitAsync(deadline.Token);
        }
    }

    /// <summary>SIGTERM, as a service manager stops it; returns the exit code and everything the agent wrote.</summary>
    public async Task<(int Code, List<string> Output)> TerminateAgentAsync(int n)
    {
        Kill(_agents[n].Id, 15);
        await _agents[n].WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
        var log = _logs[n];
        lock (log) return (_agents[n].ExitCode, [.. log]);
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "kill")]
    private static extern int Kill(int pid, int signal);

    /// <summary>SIGSTOP (stopped: true) or SIGCONT: an agent that hangs, and one that goes on.</summary>
    public void PauseAgent(int n, bool stopped) => Kill(_agents[n].Id, stopped ? 19 : 18);

    /// <summary>SIGKILL, as a crash would.</summary>
    public void KillAgent(int n)
    {
        _agents[n].Kill();
        _agents[n].WaitForExit();
    }

    /// <summary>
    /// Creates a workload namespace and attaches it through host n's agent as endpoint
    /// <paramref name="ns"/>/<paramref name="name"/>; its network namespace is <see cref="Pod"/>(name)
    /// in "default", Pod(ns + name) in any other.
    /// </summary>
    public async Task<AttachResponse> AttachAsync(int n, string name, string network, bool createNamespace = true,
        IDictionary<string, string>? labels = null, IEnumerable<NamedPort>? ports = null, string ns = "default", IEnumerable<string>? ips = null)
    {
        var pod = Pod(ns == "default" ? name : ns + name);
        if (createNamespace) AddNamespace(pod);
        using var channel = ControlPlaneChannel.ForUnixSocket(AgentSocket(n));
        var agent = new Agent.AgentClient(channel);
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                var request = new AttachRequest
                {
                    Namespace = ns, Name = name, Network = network, NetnsPath = $"/var/run/netns/{pod}", InterfaceName = "eth0",
                };
                if (labels is not null) request.Labels.Add(labels);
                if (ports is not null) request.Ports.Add(ports);
                if (ips is not null) request.Ips.Add(ips);
                return await agent.AttachAsync(request, Calls.Within(TimeSpan.FromSeconds(20)));
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.Unavailable && attempt < 100)
            {
                // The agent process is still starting: its socket is not there yet.
                await Task.Delay(100);
            }
        }
    }

    public async Task DetachAsync(int n, string name, string ns = "default")
    {
        using var channel = ControlPlaneChannel.ForUnixSocket(AgentSocket(n));
        await new Agent.AgentClient(channel).DetachAsync(new DetachRequest { Namespace = ns, Name = name }, Calls.Within(TimeSpan.FromSeconds(20)));
    }

    /// <summary>Deletes a workload namespace made by <see cref="AttachAsync"/> (after its detach).</summary>
    public void RemovePod(string pod)
    {
        Shell.Run("ip", "netns", "del", pod);
        _namespaces.Remove(pod);
    }

    public string Pod(string name) => $"{_layout.Prefix}p{_id}{name}";

    /// <summary>A namespace outside every network, on the underlay (10.99.0.200): "the internet" for egress tests.</summary>
    public string AddOutside()
    {
        var name = _layout.Prefix + "o" + _id;
        AddNamespace(name);
        Shell.Must("ip", "-n", Fabric, "link", "add", _layout.Prefix + "out", "type", "veth", "peer", "name", "eth0", "netns", name);
        Shell.Must("ip", "-n", Fabric, "link", "set", _layout.Prefix + "out", "master", "br0", "up");
        Shell.Must("ip", "-n", name, "addr", "add", "10.99.0.200/24", "dev", "eth0");
        Shell.Must("ip", "-n", name, "link", "set", "eth0", "up");
        Shell.Must("ip", "-n", name, "link", "set", "lo", "up");
        return name;
    }

    /// <summary>The agent's nftables table on host n, as nft prints it.</summary>
    public string Ruleset(int n) => Shell.Run("ip", "netns", "exec", Host(n), "nft", "list", "table", "inet", "controlplane").Output;

    /// <summary>Pings from one workload to an address until it answers or the deadline passes.</summary>
    public bool Ping(string from, string address, TimeSpan within)
    {
        var clock = Stopwatch.StartNew();
        do
        {
            if (Shell.Run("ip", "netns", "exec", Pod(from), "ping", "-c", "1", "-W", "1", address).Code == 0) return true;
        }
        while (clock.Elapsed < within);
        return false;
    }

    /// <summary>What a failing test needs to see: the workload's and every host's addresses, routes and neighbours.</summary>
    public string Diagnostics(string pod)
    {
        var lines = new List<string>();
        void Show(string ns, params string[] command) => lines.Add($"[{ns}] {string.Join(' ', command)}\n{Shell.Run(["ip", "netns", "exec", ns, .. command]).Output}");
        Show(Pod(pod), "ip", "addr");
        Show(Pod(pod), "ip", "route");
        Show(Pod(pod), "ip", "-6", "route");
        Show(Pod(pod), "ip", "neigh");
        foreach (var n in _agents.Keys)
        {
            Show(Host(n), "ip", "-br", "addr");
            Show(Host(n), "ip", "route", "show", "table", "all");
            Show(Host(n), "ip", "-6", "route", "show", "table", "all");
            Show(Host(n), "ip", "-6", "rule");
            Show(Host(n), "ip", "neigh");
            Show(Host(n), "sysctl", "net.ipv4.ip_forward");
        }
        return string.Join('\n', lines);
    }

    internal void AddNamespace(string name)
    {
        Shell.Must("ip", "netns", "add", name);
        _namespaces.Add(name);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var agent in _agents.Values)
        {
            if (!agent.HasExited) { agent.Kill(entireProcessTree: true); agent.WaitForExit(); }
            agent.Dispose();
        }
        foreach (var name in Enumerable.Reverse(_namespaces))
        {
            Shell.Run("ip", "netns", "del", name);
        }
        Client?.Dispose();
        await StopSiloAsync();
        if (Directory.Exists(_data)) Directory.Delete(_data, recursive: true);
        File.Delete(SiloSocket);
        foreach (var n in _agents.Keys) File.Delete(AgentSocket(n));
    }
}
