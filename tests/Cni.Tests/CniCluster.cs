using System.Diagnostics;
using System.Text.Json.Nodes;
using ControlPlane.Contracts.Client;
using ControlPlane.Contracts.V1;
using ControlPlane.Silo.Hosting;
using Microsoft.AspNetCore.Builder;

namespace ControlPlane.Cni.Tests;

/// <summary>
/// The test bed of tests/NodeAgent.Tests, for CNI: a silo in this process on a unix socket, an
/// underlay bridge in a fabric namespace (10.98.0.0/24), hosts as namespaces on it (10.98.0.n)
/// each running a node agent process, and optionally the cluster DNS server in a namespace of its
/// own on the fabric (10.98.0.53). The plugin (<see cref="Plugin"/>) is linked into a private CNI plugin directory
/// (<see cref="PluginDirectory"/>) as "controlplane". Runtimes keep libcni's result cache in
/// /var/lib/cni: they run in a mount namespace of their own where /var/lib is a private
/// directory (<see cref="Private"/>), so nothing outside /tmp/cniw-* changes. Every name starts
/// with "cni" and an id; everything is removed at the end, whatever happened.
/// </summary>
internal sealed class CniCluster : IAsyncDisposable
{
    public const string DnsAddress = "10.98.0.53";
    private readonly List<string> _namespaces = [];
    private readonly Dictionary<int, Process> _agents = [];
    private readonly Dictionary<int, List<string>> _logs = [];
    private readonly SemaphoreSlim _logged = new(0);
    private Process? _dns;
    private WebApplication? _silo;

    private CniCluster()
    {
        Id = Guid.NewGuid().ToString("N")[..5];
        Directory = Path.Combine("/tmp", "cniw-" + Id);
        System.IO.Directory.CreateDirectory(PluginDirectory);
        System.IO.Directory.CreateDirectory(ConfigDirectory);
        System.IO.Directory.CreateDirectory(VarLib);
        File.CreateSymbolicLink(Path.Combine(PluginDirectory, "controlplane"), Plugin);
    }

    public string Id { get; }

    /// <summary>
    /// The plugin under test: $CNI_PLUGIN (an installed one, e.g. the native executable of
    /// scripts/install-cni.sh, as CI runs it), else this build's ControlPlane.Cni.
    /// </summary>
    public static string Plugin =>
        Environment.GetEnvironmentVariable("CNI_PLUGIN") is { Length: > 0 } installed ? installed : Path.Combine(AppContext.BaseDirectory, "ControlPlane.Cni");

    /// <summary>/tmp/cniw-&lt;id&gt;: every file of the bed.</summary>
    public string Directory { get; }

    public string PluginDirectory => Path.Combine(Directory, "bin");

    public string ConfigDirectory => Path.Combine(Directory, "net.d");

    /// <summary>What runtimes see as /var/lib (libcni keeps its result cache in /var/lib/cni).</summary>
    public string VarLib => Path.Combine(Directory, "varlib");

    public string SiloSocket => Path.Combine(Directory, "silo.sock");

    public ControlPlaneClient Client { get; private set; } = null!;

    public string Fabric => $"cni{Id}f";

    public string Host(int n) => $"cni{Id}h{n}";

    public string AgentSocket(int n) => Path.Combine(Directory, $"agent{n}.sock");

    /// <summary>A namespace of the bed for a workload or a probe (created by <see cref="AddNamespace"/>).</summary>
    public string Netns(string name) => $"cni{Id}{name}";

    public static async Task<CniCluster> StartAsync(int hosts, bool dns = false)
    {
        var cluster = new CniCluster();
        try
        {
            cluster._silo = SiloApp.Build(["--Silo:Port=0", $"--Silo:DataDirectory={Path.Combine(cluster.Directory, "data")}", $"--Silo:UnixSocket={cluster.SiloSocket}",
                "--Logging:LogLevel:Default=Warning", "--Dns:Enabled=false", "--ControlPlane:NodeLeaseDuration=00:00:10"]);
            await cluster._silo.StartAsync();
            cluster.Client = new ControlPlaneClient("unix:" + cluster.SiloSocket);
            cluster.AddNamespace(cluster.Fabric);
            Shell.Must("ip", "-n", cluster.Fabric, "link", "add", "br0", "type", "bridge");
            Shell.Must("ip", "-n", cluster.Fabric, "link", "set", "br0", "up");
            for (var n = 1; n <= hosts; n++)
            {
                cluster.Underlay(cluster.Host(n), $"h{n}", $"10.98.0.{n}");
                cluster.StartAgent(n);
            }
            if (dns) cluster.StartDns();
            for (var n = 1; n <= hosts; n++)
            {
                foreach (var line in (string[])["Application started", "registered with underlay", "In sync"])
                {
                    await cluster.WaitForLogAsync(n, line, 1, TimeSpan.FromSeconds(60));
                }
            }
            await cluster.Client.Namespaces.CreateAsync(new Namespace { Metadata = new ObjectMeta { Name = "default" } });
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    /// <summary>A namespace on the underlay with <paramref name="address"/>/24 on its eth0.</summary>
    private void Underlay(string ns, string port, string address)
    {
        AddNamespace(ns);
        Shell.Must("ip", "-n", Fabric, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns);
        Shell.Must("ip", "-n", Fabric, "link", "set", port, "master", "br0", "up");
        Shell.Must("ip", "-n", ns, "addr", "add", $"{address}/24", "dev", "eth0");
        Shell.Must("ip", "-n", ns, "link", "set", "eth0", "up");
        Shell.Must("ip", "-n", ns, "link", "set", "lo", "up");
    }

    /// <summary>Creates a control-plane network (IPv4 10.&lt;vni&gt;.0.0/16, or dual-stack) for the test.</summary>
    public Task<Network> CreateNetworkAsync(string name, uint vni, bool dualStack = false)
    {
        var network = new Network { Metadata = new ObjectMeta { Name = name }, Spec = new NetworkSpec { Vni = vni, Ipv4Cidr = $"10.{vni % 200 + 20}.0.0/16" } };
        if (dualStack) network.Spec.Ipv6Cidr = $"fd00:{vni}::/64";
        return Client.Networks.CreateAsync(network);
    }

    /// <summary>Writes a network configuration list for host n's agent into <see cref="ConfigDirectory"/>; returns its name.</summary>
    public string WriteConfList(string name, string network, int host, JsonObject? extra = null, string cniVersion = "1.0.0")
    {
        var plugin = new JsonObject
        {
            ["type"] = "controlplane",
            ["network"] = network,
            ["agentSocket"] = AgentSocket(host),
            ["clusterDomain"] = "cluster.local",
            ["dns"] = new JsonObject { ["nameservers"] = new JsonArray(DnsAddress) },
            ["capabilities"] = new JsonObject { ["ips"] = true },
        };
        foreach (var (key, value) in extra ?? []) plugin[key] = value?.DeepClone();
        var list = new JsonObject { ["cniVersion"] = cniVersion, ["name"] = name, ["plugins"] = new JsonArray(plugin) };
        File.WriteAllText(Path.Combine(ConfigDirectory, name + ".conflist"), list.ToJsonString());
        return name;
    }

    /// <summary>
    /// The command line that runs <paramref name="command"/> with /var/lib replaced by <see cref="VarLib"/>
    /// in a mount namespace of its own. Where / is private (here: no systemd), propagation stays as
    /// it is, so the runtime's mounts under /run/netns (a shared mount) reach every namespace while
    /// the bind on /var/lib reaches none; where / is shared the new namespace is made a slave, so
    /// that the bind cannot leak out (the runtime's namespace mounts then stay inside it too).
    /// </summary>
    public string[] Private(params string[] command) =>
        ["unshare", "--mount", "--propagation", RootIsShared.Value ? "slave" : "unchanged", "--", "sh", "-c", "mount --bind \"$0\" /var/lib && exec \"$@\"", VarLib, .. command];

    private static readonly Lazy<bool> RootIsShared = new(() => Shell.Must("findmnt", "-n", "-o", "PROPAGATION", "/").Contains("shared", StringComparison.Ordinal));

    public void AddNamespace(string name)
    {
        Shell.Must("ip", "netns", "add", name);
        _namespaces.Add(name);
    }

    public void StartAgent(int n)
    {
        _agents[n] = Start(n, "ip", "netns", "exec", Host(n), "dotnet", Path.Combine(AppContext.BaseDirectory, "ControlPlane.NodeAgent.dll"),
            $"--Agent:ControlPlane=unix:{SiloSocket}", $"--Agent:NodeName=host-{n}", $"--Agent:UnderlayIp=10.98.0.{n}",
            $"--Agent:AttachSocket={AgentSocket(n)}", "--Agent:ResyncInterval=00:00:05", "--Agent:OrphanGracePeriod=00:00:03", "--Logging:LogLevel:Default=Warning", "--Logging:LogLevel:Microsoft.Hosting.Lifetime=Information",
            "--Logging:LogLevel:ControlPlane.NodeAgent.Sync=Information", "--Logging:LogLevel:ControlPlane.NodeAgent.Lease=Information");
    }

    /// <summary>Sends <paramref name="signal"/> (STOP, CONT) to agent n: a stopped agent accepts connections and never answers.</summary>
    public void SignalAgent(int n, string signal) => Shell.Must("kill", "-" + signal, _agents[n].Id.ToString(System.Globalization.CultureInfo.InvariantCulture));

    /// <summary>SIGKILL, as a crash would.</summary>
    public void KillAgent(int n)
    {
        _agents[n].Kill();
        _agents[n].WaitForExit();
    }

    private void StartDns()
    {
        Underlay(Netns("d"), "dns", DnsAddress);
        _dns = Start(0, "ip", "netns", "exec", Netns("d"), "dotnet", Path.Combine(AppContext.BaseDirectory, "ControlPlane.DnsServer.dll"),
            $"--Dns:Listen={DnsAddress}:53", $"--Dns:ControlPlane=unix:{SiloSocket}", "--Logging:LogLevel:Default=Warning");
    }

    private Process Start(int n, params string[] command)
    {
        var info = new ProcessStartInfo(command[0]) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in command[1..]) info.ArgumentList.Add(arg);
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
        return process;
    }

    /// <summary>Host n's agent log so far.</summary>
    public string Log(int n)
    {
        lock (_logs[n]) return string.Join('\n', _logs[n]);
    }

    public int LogLines(int n, string text)
    {
        var log = _logs[n];
        lock (log) return log.Count(l => l.Contains(text, StringComparison.Ordinal));
    }

    public async Task WaitForLogAsync(int n, string text, int count, TimeSpan timeout)
    {
        using var deadline = new CancellationTokenSource(timeout);
        try
        {
            while (LogLines(n, text) < count) await _logged.WaitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"host {n}: no '{text}' (x{count}) within {timeout}; its log:\n{Log(n)}");
        }
    }

    /// <summary>
    /// Pings <paramref name="address"/> from namespace <paramref name="from"/> until one echo is
    /// answered (true) or the time is up. Each attempt waits up to a second for its reply; one
    /// that fails at once (no route yet on the way: ping exits on the ICMP error or ENETUNREACH)
    /// is tried again until the time is up, since another host's routes arrive asynchronously.
    /// </summary>
    public static bool Ping(string from, string address, TimeSpan within)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            if (Shell.Run("ip", "netns", "exec", from, "ping", "-c", "1", "-W", "1", address).Code == 0) return true;
            if (clock.Elapsed >= within) return false;
            Thread.Sleep(50);
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var process in _agents.Values.Append(_dns).OfType<Process>())
        {
            if (!process.HasExited) { process.Kill(entireProcessTree: true); process.WaitForExit(); }
            process.Dispose();
        }
        foreach (var name in Enumerable.Reverse(_namespaces)) Shell.Run("ip", "netns", "del", name);
        Client?.Dispose();
        if (_silo is not null)
        {
            await _silo.StopAsync();
            await _silo.DisposeAsync();
        }
        if (System.IO.Directory.Exists(Directory)) System.IO.Directory.Delete(Directory, recursive: true);
    }
}
