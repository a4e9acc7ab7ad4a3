using ControlPlane.Contracts.Hosting;
using System.Diagnostics;
using ControlPlane.Contracts.Client;
using ControlPlane.Contracts.V1;
using ControlPlane.Storage.Sqlite;
using Google.Protobuf.Reflection;
using Grpc.Core;
using Grpc.Health.V1;
using Grpc.Reflection.V1Alpha;
using Microsoft.Extensions.DependencyInjection;
using Orleans;
using static ControlPlane.Silo.Tests.Fixtures;

namespace ControlPlane.Silo.Tests;

/// <summary>The silo as a program: --help and --version, its data directory lock, reflection, health, idle collection, clean stops.</summary>
public sealed class HostingTests : IDisposable
{
    private readonly string _data = Path.Combine(Path.GetTempPath(), "cp-host-" + Guid.NewGuid().ToString("N"));

    /// <summary>Runs one of the programs to its end (at most a minute); returns its exit code and everything it wrote.</summary>
    internal static async Task<(int Code, string Output)> RunAsync(string program, params string[] args)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, program + ".dll"));
        foreach (var arg in args) info.ArgumentList.Add(arg);
        using var process = Process.Start(info)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var errors = process.StandardError.ReadToEndAsync();
        try
        {
            await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        }
        catch (TimeoutException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }
        return (process.ExitCode, await output + await errors);
    }

    [Theory]
    [InlineData("ControlPlane.Silo")]
    [InlineData("ControlPlane.NodeAgent")]
    [InlineData("ControlPlane.DnsServer")]
    public async Task EveryProgram_AnswersHelpAndVersion_AndDoesNothingElse(string program)
    {
        // Run beside a silo on the same data directory: neither answer may touch it.
        await using var silo = await SiloProcess.StartAsync(_data);
        await using var watch = new WatchCollector(silo.Client, new WatchRequest { Kinds = { Kind.Namespace } });
        await watch.WaitForAsync(e => e.InitialEventsEnd, "the initial list");

        var help = await RunAsync(program, "--help", $"--Silo:DataDirectory={_data}");
        var version = await RunAsync(program, "--version", $"--Silo:DataDirectory={_data}");

        Assert.Equal(0, help.Code);
        Assert.Contains("Usage:", help.Output);
        Assert.Equal(0, version.Code);
        Assert.Matches($@"^{program} \d+\.\d+\.\d+\s*$", version.Output);
        await silo.Client.Namespaces.CreateAsync(Namespace("still-here"));
        await watch.WaitForAsync(e => e.Namespace?.Metadata.Name == "still-here", "the first silo's watch goes on");
    }

    /// <summary>A mistyped section would otherwise be dropped silently and its default used (a silo on ./data).</summary>
    [Theory]
    [InlineData("ControlPlane.Silo", "--Slio:DataDirectory=")]
    [InlineData("ControlPlane.NodeAgent", "--Agnet:NodeName=")]
    [InlineData("ControlPlane.DnsServer", "--Silo:DataDirectory=")]
    public async Task EveryProgram_RefusesASettingOfASectionItDoesNotRead(string program, string setting)
    {
        var directory = Path.Combine(Path.GetTempPath(), "cp-typo-" + Guid.NewGuid().ToString("N"));

        var (code, output) = await RunAsync(program, setting + directory);

        Assert.Equal(2, code);
        Assert.Contains($"unknown setting '{setting}{directory}'", output);
        Assert.False(Directory.Exists(directory));
    }

    /// <summary>
    /// .NET reads a bare number as days: "--ClusterSet:PeerGracePeriod=30" would be a month. Every
    /// program refuses it, naming the setting and the form it takes.
    /// </summary>
    [Theory]
    [InlineData("ControlPlane.Silo", "ClusterSet:PeerGracePeriod", "30", "--Silo:Port=0")]
    [InlineData("ControlPlane.NodeAgent", "Agent:ResyncInterval", "30", "--Agent:UnderlayIp=10.255.9.9")]
    [InlineData("ControlPlane.DnsServer", "Dns:TcpIdleTimeout", "10", "--Dns:Listen=127.0.0.1:0")]
    public async Task EveryProgram_RefusesABareNumberForADuration(string program, string setting, string value, string other)
    {
        var (code, output) = await RunAsync(program, $"--{setting}={value}", other,
            program == "ControlPlane.Silo" ? $"--Silo:DataDirectory={_data}" : program == "ControlPlane.NodeAgent" ? "--Agent:AttachSocket=" + Path.Combine(_data, "agent.sock") : "--Dns:Zone=cluster.local");

        Assert.Equal(2, code);
        Assert.Contains($"{setting}='{value}': a bare number, which .NET reads as days: write a duration as hh:mm:ss", output);
    }

    /// <summary>
    /// A value that does not convert stops every program with exit 2 and says what the setting
    /// takes, in its own words rather than .NET's type names: an enum's names (an undefined
    /// number, which .NET's binder would take, is refused too), true or false, a whole number;
    /// and a value each program checks itself.
    /// </summary>
    [Theory]
    [InlineData("ControlPlane.Silo", "Dns:PodRecords", "Foo", "Dns:PodRecords='Foo': expected one of Verified, Disabled, Insecure", "--Silo:Port=1")]
    [InlineData("ControlPlane.Silo", "Silo:Port", "http", "Silo:Port='http': expected a whole number\n", "--Dns:Enabled=false")]
    [InlineData("ControlPlane.Silo", "Metrics:OrleansPerCall", "maybe", "Metrics:OrleansPerCall='maybe': expected true or false", "--Silo:Port=0")]
    [InlineData("ControlPlane.Silo", "Limits:RequestsPerSecond", "-1", "Limits:RequestsPerSecond must not be negative", "--Silo:Port=0")]
    [InlineData("ControlPlane.Silo", "Tls:Certificate", "/nonexistent", "Tls:Certificate: '/nonexistent' does not exist", "--Silo:Port=0")]
    [InlineData("ControlPlane.Silo", "Dns:Listen", "notanaddr", "Dns:Listen 'notanaddr' is not address:port", "--Silo:Port=1")]
    [InlineData("ControlPlane.DnsServer", "Dns:Zone", "bad_zone..", "Dns:Zone 'bad_zone..' is not a domain name", "--Dns:Listen=127.0.0.1:0")]
    [InlineData("ControlPlane.DnsServer", "Dns:PodRecords", "7", "Dns:PodRecords='7': expected one of Verified, Disabled, Insecure", "--Dns:Listen=127.0.0.1:0")]
    [InlineData("ControlPlane.NodeAgent", "Agent:Ca", "/nonexistent", "ControlPlane.NodeAgent: Invalid configuration:\n  Agent:Ca: '/nonexistent' does not exist", "--Agent:UnderlayIp=10.255.9.9")]
    [InlineData("ControlPlane.DnsServer", "Dns:Ca", "/nonexistent", "Dns:Ca: '/nonexistent' does not exist", "--Dns:Listen=127.0.0.1:0")]
    [InlineData("ControlPlane.NodeAgent", "Agent:ServiceProxy", "yes", "Agent:ServiceProxy='yes': expected true or false", "--Agent:UnderlayIp=10.255.9.9")]
    [InlineData("ControlPlane.NodeAgent", "Agent:RouteProtocol", "300", "Agent:RouteProtocol='300': expected a whole number from 0 to 255", "--Agent:UnderlayIp=10.255.9.9")]
    [InlineData("ControlPlane.NodeAgent", "Metrics:Listen", "127.0.0.1", "ControlPlane.NodeAgent: Invalid configuration:\n  Metrics:Listen must be address:port, not '127.0.0.1'", "--Agent:UnderlayIp=10.255.9.9")]
    // A mistyped key of a section the program reads: refused naming the setting it resembles,
    // not ignored while the default applies (a silo on the default port).
    [InlineData("ControlPlane.Silo", "Store:Postgres", "Hots=127.0.0.1;Port=1", "Store:Postgres is not a connection string Npgsql takes: Couldn't set hots", "--Store:Provider=postgres")]
    [InlineData("ControlPlane.Silo", "Silo:Prot", "7610", "Silo:Prot: Silo has no setting 'Prot' (did you mean Silo:Port?)", "--Dns:Enabled=false")]
    [InlineData("ControlPlane.Silo", "Store:Partitons", "4", "Store:Partitons: Store has no setting 'Partitons' (did you mean Store:Partitions?)", "--Silo:Port=0")]
    [InlineData("ControlPlane.NodeAgent", "Agent:ResyncIntreval", "00:00:05", "Agent:ResyncIntreval: Agent has no setting 'ResyncIntreval' (did you mean Agent:ResyncInterval?)", "--Agent:UnderlayIp=10.255.9.9")]
    [InlineData("ControlPlane.DnsServer", "Dns:Listn", "127.0.0.1:0", "Dns:Listn: Dns has no setting 'Listn' (did you mean Dns:Listen?)", "--Dns:Ttl=30")]
    [InlineData("ControlPlane.Silo", "Dns:PodRecrods", "Disabled", "Dns:PodRecrods: Dns has no setting 'PodRecrods' (did you mean Dns:PodRecords?)", "--Silo:Port=1")]
    [InlineData("ControlPlane.NodeAgent", "Metrics:Lisen", "127.0.0.1:0", "Metrics:Lisen: Metrics has no setting 'Lisen' (did you mean Metrics:Listen?)", "--Agent:UnderlayIp=10.255.9.9")]
    public async Task EveryProgram_RefusesAValueThatCannotWork_WithExit2_SayingWhatTheSettingTakes(string program, string setting, string value, string expected, string other)
    {
        var (code, output) = await RunAsync(program, $"--{setting}={value}", other,
            program == "ControlPlane.Silo" ? $"--Silo:DataDirectory={_data}" : program == "ControlPlane.NodeAgent" ? "--Agent:AttachSocket=" + Path.Combine(_data, "agent.sock") : "--Dns:MaxUdpPayload=1232");

        Assert.Equal(2, code);
        Assert.Contains(expected, output);
        Assert.DoesNotContain("System.", output);
    }

    /// <summary>
    /// A membership Redis where none answers stops the silo with one line naming the setting, as
    /// an unreachable store does, not with Orleans' failed start and an aborted process; it
    /// touches nothing (no data directory) and does not print the setting's password.
    /// </summary>
    [Fact]
    public async Task ASilo_WhoseMembershipRedisDoesNotAnswer_StopsWithOneLineNamingTheSetting()
    {
        var port = Ports.Free();

        var (code, output) = await RunAsync("ControlPlane.Silo", "--Silo:Port=0", "--Dns:Enabled=false", $"--Silo:DataDirectory={_data}",
            "--Cluster:Membership=redis", $"--Cluster:Redis=127.0.0.1:{port},password=hunter2", "--Store:Provider=postgres",
            "--Store:Postgres=Host=127.0.0.1;Port=1;Username=postgres;Database=postgres;Timeout=2");

        Assert.Equal(1, code);
        Assert.Equal($"ControlPlane.Silo: the membership Redis cannot be reached (Cluster:Redis 127.0.0.1:{port},password=*****): UnableToConnect; start it, or correct the setting", output.Trim());
        Assert.False(Directory.Exists(_data));
        Assert.DoesNotContain("hunter2", output);
    }

    /// <summary>A PostgreSQL store where none answers stops the silo with one line naming the setting, without its password.</summary>
    [Fact]
    public async Task ASilo_WhoseStoreDoesNotAnswer_StopsWithOneLineNamingTheSetting()
    {
        var port = Ports.Free();

        var (code, output) = await RunAsync("ControlPlane.Silo", "--Silo:Port=0", "--Dns:Enabled=false", $"--Silo:DataDirectory={_data}", "--Store:Provider=postgres",
            $"--Store:Postgres=Host=127.0.0.1;Port={port};Username=postgres;Password=hunter2;Database=postgres;Timeout=2");

        Assert.Equal(1, code);
        Assert.Equal($"ControlPlane.Silo: the store cannot be reached (Store:Postgres Host=127.0.0.1;Port={port};Username=postgres;Password=*****;Database=postgres;Timeout=2): Failed to connect to 127.0.0.1:{port}; start it, or correct the setting", output.Trim());
        Assert.DoesNotContain("hunter2", output);
    }

    [Fact]
    public void UnknownSetting_ReadsArgumentsAsTheCommandLineConfigurationDoes()
    {
        string[] silo = ["Silo", "Store"];
        Assert.Null(ProgramInfo.UnknownSetting(["--Store:Postgres", "Host=db;Port=5432", "/Silo:Port=1", "silo:port=2", "--LOGGING:LogLevel:Default=Warning"], silo));
        Assert.Equal("Slio:Port=1", ProgramInfo.UnknownSetting(["--Silo:Port", "1", "Slio:Port=1"], silo));
        Assert.Equal("/Sto:Provider=sqlite", ProgramInfo.UnknownSetting(["/Sto:Provider=sqlite"], silo));
        // A word that is no setting would be dropped by the configuration: it is refused too.
        Assert.Equal("silo", ProgramInfo.UnknownSetting(["--Silo:Port=1", "silo"], silo));
    }

    /// <summary>A stray word on the command line stops the program (exit 2) saying how settings are written, instead of being ignored.</summary>
    [Theory]
    [InlineData("ControlPlane.Silo")]
    [InlineData("ControlPlane.NodeAgent")]
    [InlineData("ControlPlane.DnsServer")]
    public async Task EveryProgram_RefusesAnArgumentThatIsNoSetting(string program)
    {
        var (code, output) = await RunAsync(program, "start");

        Assert.Equal(2, code);
        Assert.Equal($"{program}: 'start' is not a setting: this program takes no arguments but settings, written --Section:Key=value; see --help", output.Trim());
    }

    /// <summary>An invalid setting stops the silo before it opens anything, with a message naming the setting (the value once).</summary>
    [Theory]
    [InlineData("--Silo:DefaultBookmarkInterval=-00:00:01", "Silo:DefaultBookmarkInterval -00:00:01 must be at least 1 second")]
    [InlineData("--ClusterSet:ClusterId=Bad_Id", "ClusterSet:ClusterId 'Bad_Id' must consist of lower-case letters")]
    public void AnInvalidSetting_StopsTheSilo_NamingIt(string setting, string message)
    {
        var directory = Path.Combine(Path.GetTempPath(), "cp-invalid-" + Guid.NewGuid().ToString("N"));

        var error = Assert.Throws<ControlPlane.Contracts.Hosting.InvalidConfigurationException>(() => ControlPlane.Silo.Hosting.SiloApp.Build(["--Silo:Port=0", $"--Silo:DataDirectory={directory}", "--Dns:Enabled=false", setting]));

        Assert.Contains(message, error.Message);
        Assert.False(Directory.Exists(directory));
    }

    /// <summary>An agent given no underlay address is told it is required (not that '' is no IP address).</summary>
    [Fact]
    public async Task AnAgent_WithoutAnUnderlayAddress_IsToldItIsRequired()
    {
        var (code, output) = await RunAsync("ControlPlane.NodeAgent", "--Agent:AttachSocket=" + Path.Combine(_data, "agent.sock"));

        Assert.Equal(2, code);
        Assert.Contains("Agent:UnderlayIp is required", output);
    }

    /// <summary>A setting every program reads but whose value cannot work stops it with exit code 2 (as an unknown setting does), naming the setting.</summary>
    [Theory]
    [InlineData("ControlPlane.Silo", "--Silo:DefaultBookmarkInterval=-00:00:01", "Silo:DefaultBookmarkInterval")]
    [InlineData("ControlPlane.NodeAgent", "--Agent:PolicyEntryLimit=0", "Agent:PolicyEntryLimit")]
    [InlineData("ControlPlane.DnsServer", "--Dns:PodRecords=Sometimes", "Dns:PodRecords")]
    public async Task EveryProgram_StopsWithExitCode2_OnAnInvalidValue(string program, string setting, string named)
    {
        string[] others = program switch
        {
            "ControlPlane.Silo" => [$"--Silo:DataDirectory={_data}", "--Silo:Port=0"],
            "ControlPlane.NodeAgent" => ["--Agent:AttachSocket=" + Path.Combine(_data, "agent.sock"), "--Agent:UnderlayIp=10.255.9.9"],
            _ => ["--Dns:Listen=127.0.0.1:0"],
        };
        var (code, output) = await RunAsync(program, [setting, .. others]);

        Assert.Equal(2, code);
        Assert.Contains(named, output);
    }

    /// <summary>
    /// A second agent given the attach socket a running agent serves stops at once (exit 1,
    /// naming the setting) instead of taking the path over; the first keeps serving it. A socket
    /// file nobody serves any more (left by a killed agent) is taken over.
    /// </summary>
    [Fact]
    public async Task ASecondAgent_OnTheSameAttachSocket_StopsAndTheFirstKeepsIt()
    {
        Directory.CreateDirectory(_data);
        var socket = Path.Combine(_data, "agent.sock");
        string[] settings = ["--Agent:NodeName=one", "--Agent:UnderlayIp=10.255.9.9", "--Agent:ControlPlane=unix:" + Path.Combine(_data, "none.sock"), "--Agent:AttachSocket=" + socket];
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "ControlPlane.NodeAgent.dll"));
        foreach (var setting in settings) info.ArgumentList.Add(setting);
        using var first = Process.Start(info)!;
        try
        {
            var listening = new TaskCompletionSource();
            first.OutputDataReceived += (_, e) => { if (e.Data?.Contains("Now listening on", StringComparison.Ordinal) == true) listening.TrySetResult(); };
            first.ErrorDataReceived += (_, _) => { };
            first.BeginOutputReadLine();
            first.BeginErrorReadLine();
            await listening.Task.WaitAsync(TimeSpan.FromSeconds(60));

            var (code, output) = await RunAsync("ControlPlane.NodeAgent", [.. settings]);

            Assert.Equal(1, code);
            Assert.Contains($"Agent:AttachSocket {socket}: another process serves this socket", output);
            using var probe = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
            await probe.ConnectAsync(new System.Net.Sockets.UnixDomainSocketEndPoint(socket));
        }
        finally
        {
            first.Kill();
            await first.WaitForExitAsync();
        }
        // Killed: its socket file stays behind, served by nobody; the next agent takes it.
        Assert.True(File.Exists(socket));
        ListenAddress.ClaimUnixSocket("Agent:AttachSocket", socket);
        Assert.False(File.Exists(socket));
    }

    /// <summary>
    /// A node name the control plane would refuse to register (it is no DNS subdomain) stops the
    /// agent at once with exit code 2 naming the setting, instead of retrying the registration for ever.
    /// </summary>
    [Theory]
    [InlineData("Node-1")]
    [InlineData("node_1")]
    [InlineData("-node")]
    public async Task TheAgent_RefusesANodeNameTheControlPlaneWouldRefuse(string name)
    {
        var (code, output) = await RunAsync("ControlPlane.NodeAgent", $"--Agent:NodeName={name}", "--Agent:UnderlayIp=10.255.9.9",
            "--Agent:AttachSocket=" + Path.Combine(_data, "agent.sock"));

        Assert.Equal(2, code);
        Assert.Contains($"Agent:NodeName '{name}' must be a DNS subdomain", output);
    }

    /// <summary>A taken address (UDP or TCP) stops each program at once with one line naming the setting, and exit code 1.</summary>
    [Theory]
    [InlineData("ControlPlane.Silo", "Dns:Listen", System.Net.Sockets.SocketType.Dgram)]
    [InlineData("ControlPlane.Silo", "Dns:Listen", System.Net.Sockets.SocketType.Stream)]
    [InlineData("ControlPlane.Silo", "Silo:Port", System.Net.Sockets.SocketType.Stream)]
    [InlineData("ControlPlane.DnsServer", "Dns:Listen", System.Net.Sockets.SocketType.Dgram)]
    [InlineData("ControlPlane.DnsServer", "Dns:Listen", System.Net.Sockets.SocketType.Stream)]
    [InlineData("ControlPlane.DnsServer", "Metrics:Listen", System.Net.Sockets.SocketType.Stream)]
    [InlineData("ControlPlane.NodeAgent", "Metrics:Listen", System.Net.Sockets.SocketType.Stream)]
    public async Task ATakenListenAddress_IsOneLine_AndExitCode1(string program, string setting, System.Net.Sockets.SocketType type)
    {
        using var taken = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork, type, System.Net.Sockets.ProtocolType.Unspecified);
        taken.Bind(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0));
        if (type == System.Net.Sockets.SocketType.Stream) taken.Listen();
        var address = taken.LocalEndPoint!.ToString();
        var socket = Path.Combine(Path.GetTempPath(), $"cp-busy-{Guid.NewGuid():N}.sock");
        // (The DNS server reads no Silo section: it would refuse one.)
        string[] args = setting == "Silo:Port"
            ? [$"--Silo:DataDirectory={_data}", $"--Silo:Port={((System.Net.IPEndPoint)taken.LocalEndPoint).Port}", "--Dns:Enabled=false"]
            : setting == "Metrics:Listen"
                ? program == "ControlPlane.NodeAgent"
                    ? [$"--Metrics:Listen={address}", "--Agent:UnderlayIp=10.255.9.9", "--Agent:AttachSocket=" + Path.Combine(_data, "agent.sock")]
                    : [$"--Metrics:Listen={address}", "--Dns:Listen=127.0.0.1:0"]
            : program == "ControlPlane.Silo"
                ? [$"--Silo:DataDirectory={_data}", "--Silo:Port=0", $"--Silo:UnixSocket={socket}", $"--Dns:Listen={address}"]
                : [$"--Dns:Listen={address}"];

        var run = await RunAsync(program, args);
        File.Delete(socket);

        Assert.Equal(1, run.Code);
        var line = Assert.Single(run.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Equal($"{program}: {setting} {address}: {(type == System.Net.Sockets.SocketType.Dgram ? "UDP" : "TCP")} address already in use by another process; stop it or choose another {setting}", line);
    }

    /// <summary>
    /// A path the silo cannot use (through a file, under /proc) stops it with one line naming the
    /// setting and exit code 1, not an unhandled exception.
    /// </summary>
    [Theory]
    [InlineData("Silo:DataDirectory")]
    [InlineData("Audit:Path")]
    public async Task AnUnusablePath_IsOneLineNamingTheSetting_AndExitCode1(string setting)
    {
        Directory.CreateDirectory(_data);
        var file = Path.Combine(_data, "a-file");
        File.WriteAllText(file, "");
        var unusable = Path.Combine(file, "below");
        string[] args = setting == "Silo:DataDirectory"
            ? [$"--Silo:DataDirectory={unusable}", "--Silo:Port=0", "--Dns:Enabled=false"]
            : [$"--Silo:DataDirectory={Path.Combine(_data, "data")}", "--Silo:Port=0", "--Dns:Enabled=false", $"--Audit:Path={Path.Combine(unusable, "audit.jsonl")}"];

        var run = await RunAsync("ControlPlane.Silo", args);

        Assert.Equal(1, run.Code);
        var line = Assert.Single(run.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith($"ControlPlane.Silo: {setting} ", line, StringComparison.Ordinal);
        Assert.Contains(" cannot be used: ", line, StringComparison.Ordinal);
    }

    /// <summary>
    /// Orleans' membership runs on a clock whose timestamps count from the process's start (its
    /// watchdog measured a stamp of zero against the machine's uptime at busy starts).
    /// </summary>
    [Fact]
    public async Task Membership_timestamps_count_from_the_process_start()
    {
        await using var silo = await SiloInstance.StartAsync();
        var clock = silo.Services.GetRequiredKeyedService<TimeProvider>(Orleans.Runtime.TimeProviderNames.Membership);
        var sinceStart = clock.GetElapsedTime(0);
        var processAge = DateTime.Now - Process.GetCurrentProcess().StartTime;
        Assert.True(sinceStart > TimeSpan.Zero && sinceStart <= processAge, $"{sinceStart} since the clock's zero, the process is {processAge} old");
    }

    [Fact]
    public async Task ASecondSilo_OnTheSameDataDirectory_FailsFast_AndTheFirstKeepsServing()
    {
        await using var first = await SiloProcess.StartAsync(_data);
        await using var watch = new WatchCollector(first.Client, new WatchRequest { Kinds = { Kind.Namespace } });
        await watch.WaitForAsync(e => e.InitialEventsEnd, "the initial list");
        var before = await PositionAsync(first.Client);

        var clock = Stopwatch.StartNew();
        var second = await RunAsync("ControlPlane.Silo", "--Silo:Port=0", $"--Silo:DataDirectory={_data}", "--Dns:Enabled=false");

        Assert.NotEqual(0, second.Code);
        Assert.Contains("in use by another silo", second.Output);
        Assert.DoesNotContain("   at ", second.Output);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20), $"the second silo took {clock.Elapsed} to give up");
        Assert.Equal(before, await PositionAsync(first.Client));
        var health = await new Health.HealthClient(first.Client.Invoker).CheckAsync(new HealthCheckRequest());
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, health.Status);
        await first.Client.Namespaces.CreateAsync(Namespace("after-the-attempt"));
        await watch.WaitForAsync(e => e.Namespace?.Metadata.Name == "after-the-attempt", "the first silo's watch goes on");
    }

    /// <summary>A bad setting is reported as such (exit 2) by a silo started beside a running one, not hidden behind the data directory's lock.</summary>
    [Theory]
    [InlineData("--Dns:PodRecords=Foo", "Dns:PodRecords")]
    [InlineData("--Limits:Unknown=1", "Limits:Unknown")]
    public async Task ABadSetting_IsReportedBeforeTheDataDirectoryLock(string setting, string named)
    {
        await using var first = await SiloProcess.StartAsync(_data);

        var second = await RunAsync("ControlPlane.Silo", "--Silo:Port=0", $"--Silo:DataDirectory={_data}", "--Dns:Listen=127.0.0.1:0", "--Silo:UnixSocket=" + Path.Combine(_data, "x.sock"), setting);

        Assert.Equal(2, second.Code);
        Assert.Contains(named, second.Output);
        Assert.DoesNotContain("in use by another silo", second.Output);
    }

    [Fact]
    public async Task Sigterm_StopsTheSilo_WithoutFailOrCritLines_WhileWatchesAreOpen()
    {
        var silo = await SiloProcess.StartAsync(_data);
        try
        {
            await using var watch = new WatchCollector(silo.Client, new WatchRequest());
            await watch.WaitForAsync(e => e.InitialEventsEnd, "the initial list");
            await SeedAsync(silo.Client);
            await silo.Client.Endpoints.CreateAsync(Endpoint("ns", "e", "net", "node-a"));

            var output = await silo.TerminateAsync();

            Assert.Equal(0, silo.ExitCode);
            Assert.DoesNotContain(output, line => line.Contains("fail:", StringComparison.Ordinal) || line.Contains("crit:", StringComparison.Ordinal));
            Assert.Null(await watch.CompletionAsync());
        }
        finally
        {
            await silo.DisposeAsync();
        }
    }

    /// <summary>
    /// A silo with its embedded DNS server starts without a warning: the DNS server starts
    /// following the API once it listens (it used to log the silo's own start as an outage).
    /// </summary>
    [Fact]
    public async Task ASilo_WithItsDnsServer_StartsWithoutAWarning()
    {
        // A fixed port, which the DNS server follows over TCP (as by default).
        var silo = await SiloProcess.StartAsync(_data, "--Dns:Enabled=true", "--Dns:Listen=127.0.0.1:0", $"--Silo:Port={Ports.Free()}");
        try
        {
            await silo.WaitForLineAsync(line => line.Contains("Zone snapshot", StringComparison.Ordinal), TimeSpan.FromSeconds(30));

            var output = await silo.TerminateAsync();

            Assert.Equal(0, silo.ExitCode);
            Assert.DoesNotContain(output, line => line.Contains("warn:", StringComparison.Ordinal) || line.Contains("fail:", StringComparison.Ordinal));
        }
        finally
        {
            await silo.DisposeAsync();
        }
    }

    [Fact]
    public async Task Sigterm_StopsTheDnsServer_WithoutFailOrCritLines()
    {
        await using var silo = await SiloInstance.StartAsync();
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in (string[])[Path.Combine(AppContext.BaseDirectory, "ControlPlane.DnsServer.dll"), "--Dns:Listen=127.0.0.1:0", $"--Dns:ControlPlane={silo.Address}"])
            info.ArgumentList.Add(arg);
        using var dns = Process.Start(info)!;
        var lines = new List<string>();
        var synced = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        void Collect(string? line)
        {
            if (line is null) return;
            lock (lines) lines.Add(line);
            if (line.Contains("Zone snapshot", StringComparison.Ordinal)) synced.TrySetResult();
        }
        dns.OutputDataReceived += (_, e) => Collect(e.Data);
        dns.ErrorDataReceived += (_, e) => Collect(e.Data);
        dns.BeginOutputReadLine();
        dns.BeginErrorReadLine();
        try
        {
            await synced.Task.WaitAsync(TimeSpan.FromSeconds(30));

            SiloProcess.Signal(dns.Id, 15);
            await dns.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));

            Assert.Equal(0, dns.ExitCode);
            lock (lines) Assert.DoesNotContain(lines, line => line.Contains("fail:", StringComparison.Ordinal) || line.Contains("crit:", StringComparison.Ordinal));
        }
        finally
        {
            if (!dns.HasExited) dns.Kill();
        }
    }

    [Fact]
    public async Task Reflection_ListsAndDescribesTheServices_WithoutProtoFiles()
    {
        await using var silo = await SiloInstance.StartAsync();
        var reflection = new ServerReflection.ServerReflectionClient(silo.Client.Invoker);
        using var call = reflection.ServerReflectionInfo();

        await call.RequestStream.WriteAsync(new ServerReflectionRequest { ListServices = "" });
        Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None));
        var services = call.ResponseStream.Current.ListServicesResponse.Service.Select(s => s.Name).ToList();
        Assert.Contains("controlplane.v1.Namespaces", services);
        Assert.Contains("controlplane.v1.Endpoints", services);
        Assert.Contains("controlplane.v1.Watch", services);
        Assert.Contains("grpc.health.v1.Health", services);

        await call.RequestStream.WriteAsync(new ServerReflectionRequest { FileContainingSymbol = "controlplane.v1.Watch" });
        Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None));
        var files = call.ResponseStream.Current.FileDescriptorResponse.FileDescriptorProto.Select(b => FileDescriptorProto.Parser.ParseFrom(b)).ToList();
        var watchService = files.SelectMany(f => f.Service).Single(s => s.Name == "Watch");
        var method = Assert.Single(watchService.Method);
        Assert.True(method.ServerStreaming);
        Assert.Equal(".controlplane.v1.WatchEvent", method.OutputType);
        // The describing client gets every message the method uses, down to the resources.
        Assert.Contains(files.SelectMany(f => f.MessageType), m => m.Name == "Endpoint");

        // The health service's file by the path it has in proto/ and in gRPC's repository.
        await call.RequestStream.WriteAsync(new ServerReflectionRequest { FileByFilename = "grpc/health/v1/health.proto" });
        Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None));
        var health = FileDescriptorProto.Parser.ParseFrom(Assert.Single(call.ResponseStream.Current.FileDescriptorResponse.FileDescriptorProto));
        Assert.Equal(["Check", "Watch"], health.Service.Single(s => s.Name == "Health").Method.Select(m => m.Name).Order());
        await call.RequestStream.WriteAsync(new ServerReflectionRequest { FileContainingSymbol = "grpc.health.v1.Health" });
        Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None));
        Assert.Equal("grpc/health/v1/health.proto", FileDescriptorProto.Parser.ParseFrom(call.ResponseStream.Current.FileDescriptorResponse.FileDescriptorProto[0]).Name);
        await call.RequestStream.CompleteAsync();

        // Reflection v1 lists what is served: every API service, health and reflection (both versions).
        var v1 = new Grpc.Reflection.V1.ServerReflection.ServerReflectionClient(silo.Client.Invoker);
        using var v1Call = v1.ServerReflectionInfo();
        await v1Call.RequestStream.WriteAsync(new Grpc.Reflection.V1.ServerReflectionRequest { ListServices = "" });
        Assert.True(await v1Call.ResponseStream.MoveNext(CancellationToken.None));
        string[] expected = [.. ControlPlane.Contracts.V1.ApiReflection.Descriptor.Services.Select(s => s.FullName),
            "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"];
        Assert.Equal(expected.Order(), v1Call.ResponseStream.Current.ListServicesResponse.Service.Select(s => s.Name).Order());
        await v1Call.RequestStream.WriteAsync(new Grpc.Reflection.V1.ServerReflectionRequest { FileByFilename = "grpc/health/v1/health.proto" });
        Assert.True(await v1Call.ResponseStream.MoveNext(CancellationToken.None));
        Assert.Single(v1Call.ResponseStream.Current.FileDescriptorResponse.FileDescriptorProto);
        await v1Call.RequestStream.CompleteAsync();
    }

    [Fact]
    public async Task Health_IsNotServing_OnceAnotherOwnerFencedTheStore_AndWritesFailUnavailable()
    {
        await using var silo = await SiloInstance.StartAsync();
        var health = new Health.HealthClient(silo.Client.Invoker);
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, (await health.CheckAsync(new HealthCheckRequest())).Status);

        // Someone opens the same database behind the silo's back (bypassing the directory lock).
        using (var usurper = new SqliteGrainStore(Path.Combine(silo.DataDirectory, "controlplane.db")))
        {
            usurper.Open("usurper", 16);
        }

        var deadline = Stopwatch.StartNew();
        while ((await health.CheckAsync(new HealthCheckRequest())).Status == HealthCheckResponse.Types.ServingStatus.Serving)
        {
            Assert.True(deadline.Elapsed < TimeSpan.FromSeconds(10), "health still SERVING 10 s after the store was fenced");
            await Task.Delay(100);
        }
        var error = await Assert.ThrowsAsync<RpcException>(() => silo.Client.Namespaces.CreateAsync(Namespace("fenced")));
        Assert.Equal(StatusCode.Unavailable, error.StatusCode);
    }

    [Fact]
    public async Task IdleActivations_AreCollected_AndListAndWatchActivateNothing()
    {
        await using var silo = await SiloInstance.StartAsync("--Cluster:IdleTimeout=00:00:02");
        await Task.WhenAll(Enumerable.Range(0, 20).Select(i => silo.Client.Namespaces.CreateAsync(Namespace($"idle-{i}"))));
        var management = silo.Services.GetRequiredService<IGrainFactory>().GetGrain<IManagementGrain>(0);
        Assert.True(await NamespaceActivationsAsync(management) >= 20);

        var deadline = Stopwatch.StartNew();
        while (await NamespaceActivationsAsync(management) > 0)
        {
            Assert.True(deadline.Elapsed < TimeSpan.FromSeconds(30), "namespace activations still alive 30 s after their last call");
            await Task.Delay(250);
        }
        var listed = await silo.Client.Namespaces.ListAsync(new ListRequest { PageSize = 100 });
        await using (var watch = new WatchCollector(silo.Client, new WatchRequest { Kinds = { Kind.Namespace } }))
        {
            await watch.WaitForAsync(e => e.InitialEventsEnd, "the initial list");
        }

        Assert.Equal(20, listed.Namespaces.Count);
        Assert.Equal(0, await NamespaceActivationsAsync(management));
        // The next call activates the grain again, with its state loaded from the store.
        var reloaded = await silo.Client.Namespaces.GetAsync("", "idle-7");
        Assert.Equal(listed.Namespaces.Single(n => n.Metadata.Name == "idle-7").Metadata.Uid, reloaded.Metadata.Uid);
    }

    [Fact]
    public async Task CallsOnMissingObjects_LeaveNoActivationBehind()
    {
        // The default idle timeout (10 minutes): what goes must go because the object is missing.
        await using var silo = await SiloInstance.StartAsync();
        var management = silo.Services.GetRequiredService<IGrainFactory>().GetGrain<IManagementGrain>(0);
        await Task.WhenAll(Enumerable.Range(0, 50).Select(async i =>
        {
            var get = await Assert.ThrowsAsync<RpcException>(() => silo.Client.Namespaces.GetAsync("", $"missing-{i}"));
            Assert.Equal(StatusCode.NotFound, get.StatusCode);
            var delete = await Assert.ThrowsAsync<RpcException>(() => silo.Client.Namespaces.DeleteAsync("", $"gone-{i}"));
            Assert.Equal(StatusCode.NotFound, delete.StatusCode);
        }));

        var deadline = Stopwatch.StartNew();
        while (await NamespaceActivationsAsync(management) > 0)
        {
            Assert.True(deadline.Elapsed < TimeSpan.FromSeconds(10), $"{await NamespaceActivationsAsync(management)} activations of missing namespaces still alive 10 s after the calls");
            await Task.Delay(100);
        }
        // A name looked up before it existed is created and read as any other.
        await silo.Client.Namespaces.CreateAsync(Namespace("missing-3"));
        Assert.Equal("missing-3", (await silo.Client.Namespaces.GetAsync("", "missing-3")).Metadata.Name);
    }

    private static async Task<int> NamespaceActivationsAsync(IManagementGrain management) =>
        (await management.GetSimpleGrainStatistics()).Where(s => s.GrainType.Contains("Namespace", StringComparison.Ordinal)).Sum(s => s.ActivationCount);

    public void Dispose()
    {
        if (Directory.Exists(_data)) Directory.Delete(_data, recursive: true);
    }
}
