using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using ControlPlane.Contracts.V1;
using ControlPlane.Dns;
using ControlPlane.Grains;
using ControlPlane.NodeAgent.Dataplane;
using Google.Protobuf;
using Google.Protobuf.Reflection;
using Grpc.Core;
using Grpc.Reflection.V1Alpha;
using Microsoft.Extensions.DependencyInjection;

namespace ControlPlane.Silo.Tests;

/// <summary>
/// README.md and docs/ checked against the code and the repository: each claim a user acts on
/// (a command, a port, an address, a file name, a routing table's last route) is read from the
/// documents and compared with what the code does. The commands of README's "Using the API" run
/// against a silo in this process, and its DNS examples are asked of that silo's own DNS server
/// with dig (on loopback).
/// </summary>
public sealed partial class ReadmeTests(ReadmeTests.ReadmeSilo fixture) : IClassFixture<ReadmeTests.ReadmeSilo>
{
    private static readonly string Root = RepositoryPaths.Root;
    private static readonly Markdown Readme = Markdown.Load(Path.Combine(Root, "README.md"));
    private static readonly string[] DocFiles = Directory.GetFiles(Path.Combine(Root, "docs"), "*.md", SearchOption.AllDirectories);

    // ---- 10. "the Health/Check example fails with grpcurl, because api.proto does not import the health proto"

    /// <summary>
    /// Every way the README tells grpcurl to find the API (each <c>G=…</c>) must know every service
    /// the examples call: without proto files, through the silo's reflection (asked here the way
    /// grpcurl asks it); with <c>-proto</c> files, through those files and what they import.
    /// </summary>
    [Fact]
    public async Task GrpcurlExamples_EveryCalledService_IsKnownToEachWayTheReadmeConfiguresGrpcurl()
    {
        var definitions = Readme.Commands().Where(c => c.Words.Count == 1 && c.Words[0].StartsWith("G=grpcurl ", StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(definitions);
        var calls = GrpcurlCalls().ToList();
        var called = calls.Select(c => c.Service).Concat(Readme.Commands().Where(c => c.Words is ["$G", _, "describe", _]).Select(c => c.Words[3])).Distinct().ToList();
        Assert.Contains("grpc.health.v1.Health", called);

        var silo = await fixture.SiloAsync();
        var reflection = new ServerReflection.ServerReflectionClient(silo.Client.Invoker);
        foreach (var definition in definitions)
        {
            var flags = definition.Words[0]["G=".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            var protoFiles = FlagValues(flags, "-proto");
            Assert.DoesNotContain("-protoset", flags);
            if (protoFiles.Count == 0)
            {
                foreach (var service in called)
                {
                    var methods = await ReflectedMethodsAsync(reflection, service);
                    Assert.True(methods is not null, $"README line {definition.Line}: reflection does not describe {service}");
                    foreach (var call in calls.Where(c => c.Service == service))
                    {
                        Assert.True(methods!.Contains(call.Method), $"README line {call.Line}: reflection describes no {service}/{call.Method}");
                    }
                }
            }
            else
            {
                var importPaths = FlagValues(flags, "-import-path").Select(p => Path.Combine(Root, p)).DefaultIfEmpty(Root).ToList();
                var services = ProtoServices(importPaths, protoFiles);
                foreach (var call in calls)
                {
                    Assert.True(services.TryGetValue(call.Service, out var methods),
                        $"README line {definition.Line}: grpcurl given {string.Join(", ", protoFiles)} (and their imports) does not know {call.Service}, called on line {call.Line}");
                    Assert.Contains(call.Method, methods);
                }
            }
        }

        // And the health check answers what the README shows it for: a serving silo.
        var health = await new Grpc.Health.V1.Health.HealthClient(silo.Client.Invoker).CheckAsync(new Grpc.Health.V1.HealthCheckRequest());
        Assert.Equal(Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus.Serving, health.Status);
    }

    // ---- 10. "the standalone DNS examples query port 1053 while that server listens on 1054"

    /// <summary>
    /// In each shell block that starts DNS servers (the DnsServer program, or a silo with its
    /// embedded server), every dig/kdig targets one of them; a block that starts none targets the
    /// silo's embedded server as configured by default (src/Silo/appsettings.json).
    /// </summary>
    [Fact]
    public void DnsExamples_QueryTheAddressAndPortTheirServerListensOn()
    {
        var embedded = Setting("src/Silo/appsettings.json", "Dns", "Listen");
        var standalone = Setting("src/DnsServer/dnsserver.json", "Dns", "Listen");
        var queries = 0;
        foreach (var (document, block) in AllBlocks())
        {
            var commands = Shell.Parse(block.Text, block.Line).ToList();
            var servers = new List<string>();
            foreach (var command in commands.Where(c => !c.Words.Contains("build")))
            {
                if (command.Words.Any(w => w is "src/DnsServer" || w.EndsWith("ControlPlane.DnsServer.dll", StringComparison.Ordinal)))
                {
                    servers.Add(Option(command, "--Dns:Listen") ?? standalone);
                }
                else if (command.Words.Any(w => w is "src/Silo" || w.EndsWith("ControlPlane.Silo.dll", StringComparison.Ordinal)) && Option(command, "--Dns:Enabled") != "false")
                {
                    servers.Add(Option(command, "--Dns:Listen") ?? embedded);
                }
            }
            foreach (var dig in commands.Where(c => c.Words.Count > 0 && c.Words[0] is "dig" or "kdig"))
            {
                queries++;
                var server = dig.Words.FirstOrDefault(w => w.StartsWith('@'))?[1..];
                var port = dig.Words.SkipWhile(w => w != "-p").Skip(1).FirstOrDefault() ?? "53";
                var target = $"{server}:{port}";
                var expected = servers.Count > 0 ? servers : [embedded];
                Assert.True(expected.Contains(target),
                    $"{document} line {dig.Line}: {dig.Words[0]} asks {target}, but the DNS server{(servers.Count > 0 ? "s started in its block listen" : " it asks (the silo's embedded one) listens")} on {string.Join(", ", expected)}");
            }
        }
        Assert.True(queries > 0, "README shows no DNS query");
    }

    // ---- 10. "`dig -x 10.96.0.5` does not match the address the example service gets"

    /// <summary>
    /// Runs README's gRPC examples in order on a fresh silo (as "Using the API" does), then asks
    /// every dig of the DNS section of that silo's DNS server and holds the answer to the comment
    /// beside it: the reverse name of the example service's virtual IP, the pod records of its
    /// endpoint's addresses, the NXDOMAIN and REFUSED cases, and the records shown for the
    /// ExternalName service.
    /// </summary>
    [Fact]
    public async Task DnsExamples_NameTheAddressesTheExamplesGet_AndAnswerAsTheirCommentsSay()
    {
        var silo = await fixture.SiloAsync();
        var dnsPort = silo.Services.GetRequiredService<DnsListenerService>().LocalEndPoint!.Port;
        var web = await silo.Client.Services.GetAsync("shop", "web");
        var services = (await silo.Client.Services.ListAsync(new ListRequest())).Services;
        var serviceRange = IPNetwork.Parse(new ControlPlaneOptions().ServiceIpv4Cidr);
        var section = Readme.Section("Cluster DNS");
        var digs = section.ShellBlocks.SelectMany(b => Shell.Parse(b.Text, b.Line)).ToList();
        var checkedReverse = false;
        string? lastPod = null;
        for (var i = 0; i < digs.Count; i++)
        {
            var dig = digs[i];
            if (dig.Words is not ["dig", ..]) continue;
            var question = dig.Words.Where((w, j) => j > 0 && !w.StartsWith('@') && !w.StartsWith('+') && w != "-p" && dig.Words[j - 1] != "-p").ToList();
            var comment = dig.Comment ?? "";
            if (question is ["-x", var address] && serviceRange.Contains(IPAddress.Parse(address)))
            {
                // A reverse lookup in the service range: the virtual IP of a service the examples made.
                var held = services.Where(v => v.Status.ClusterIps.Contains(address)).Select(v => $"{v.Metadata.Name}.{v.Metadata.Namespace}.svc.cluster.local.").ToList();
                Assert.True(held.Count == 1,
                    $"README line {dig.Line}: dig -x {address}, but on a fresh silo the examples' services get {string.Join(", ", services.SelectMany(v => v.Status.ClusterIps.Select(ip => $"{ip} ({v.Metadata.Name})")))}");
                Assert.Equal(NameIn(comment) ?? held[0], held[0]);
                Assert.Equal(held[0], await DigAsync(dnsPort, "+short", "-x", address));
                checkedReverse = true;
            }
            else if (question.Count >= 1 && Regex.Match(question[0], @"^([0-9a-f-]+)\.([a-z0-9-]+)\.pod\.cluster\.local$") is { Success: true } pod)
            {
                // A pod record: the address it encodes belongs to the endpoint its comment names.
                var owner = Regex.Match(comment, @"(\S+)'s pod record") is { Success: true } m ? m.Groups[1].Value
                    : comment.Contains("the same pod", StringComparison.Ordinal) ? lastPod : null;
                Assert.True(owner is not null, $"README line {dig.Line}: the comment names no endpoint");
                lastPod = owner;
                var label = pod.Groups[1].Value;
                var encoded = IPAddress.Parse(label.Count(c => c == '-') == 3 && !label.Contains("--", StringComparison.Ordinal) ? label.Replace('-', '.') : label.Replace('-', ':'));
                var endpoint = await silo.Client.Endpoints.GetAsync(pod.Groups[2].Value, owner!);
                Assert.True(endpoint.Status.Ips.Select(IPAddress.Parse).Contains(encoded),
                    $"README line {dig.Line}: {question[0]} is {encoded}, but {owner} got {string.Join(", ", endpoint.Status.Ips)}");
                Assert.Equal(encoded, IPAddress.Parse(await DigAsync(dnsPort, ["+short", .. question])));
            }
            else if (Regex.Match(comment, @"\b(NXDOMAIN|REFUSED)\b") is { Success: true } rcode)
            {
                Assert.Contains($"status: {rcode.Groups[1].Value},", await DigAsync(dnsPort, ["+noall", "+comments", .. question]));
            }
            else
            {
                // Records shown as comment lines after the query: the answer section, as dig prints it.
                var shown = digs.Skip(i + 1).TakeWhile(c => c.Words.Count == 0 && c.Comment is not null).Select(c => Record(c.Comment!)).ToList();
                if (shown.Count == 0) continue;
                var answer = (await DigAsync(dnsPort, ["+noall", "+answer", .. question])).Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(Record).ToList();
                Assert.Equal(shown, answer);
                Assert.Contains(shown, r => r.EndsWith(" A " + web.Status.ClusterIps[0], StringComparison.Ordinal));
            }
        }
        Assert.True(checkedReverse, "the Cluster DNS section shows no reverse lookup of the example service");

        // What the section's text says the examples get.
        foreach (Match claim in Regex.Matches(Regex.Replace(section.Text, @"\s+", " "), @"\b([a-z][a-z0-9-]*) gets ([0-9a-f.:]*[0-9a-f])(?: and ([0-9a-f.:]*[0-9a-f]))?"))
        {
            var name = claim.Groups[1].Value;
            var got = services.FirstOrDefault(v => v.Metadata.Name == name)?.Status.ClusterIps.ToList()
                ?? [.. (await silo.Client.Endpoints.GetAsync("shop", name)).Status.Ips];
            foreach (var address in claim.Groups.Values.Skip(2).Where(g => g.Success).Select(g => g.Value))
            {
                Assert.True(got.Contains(address), $"README's Cluster DNS section says {name} gets {address}; on a fresh silo it gets {string.Join(", ", got)}");
            }
        }
    }

    // ---- 10. "the routing table ends in `throw default`, not an unreachable default"

    /// <summary>
    /// The overlay driver seals each network's table with one default route and fences every
    /// network's CIDR with another route type; README and the architecture describe the same
    /// types, and the table number the agent uses.
    /// </summary>
    [Fact]
    public void RoutingTableDescription_EndsInTheDefaultRouteTheOverlayInstalls()
    {
        var driver = File.ReadAllText(Path.Combine(Root, "src/Dataplane.Linux/Overlay/VxlanOverlay.cs"));
        var seal = Regex.Match(driver, @"ReplaceTerminalRoute\(Rtm\.Rtn(\w+), Family, null, 0,");
        var fence = Regex.Match(driver, @"ReplaceTerminalRoute\(Rtm\.Rtn(\w+), Family, network, length,");
        Assert.True(seal.Success && fence.Success, "VxlanOverlay no longer installs its terminal routes the way this test reads them");
        var sealType = seal.Groups[1].Value.ToLowerInvariant();
        var fenceType = fence.Groups[1].Value.ToLowerInvariant();
        var types = new[] { "throw", "unreachable", "blackhole", "prohibit" };

        var agent = Readme.Section("Running a node agent").Text;
        var architecture = File.ReadAllText(Path.Combine(Root, "docs/ARCHITECTURE.md"));
        foreach (var (name, text) in new[] { ("README", agent), ("docs/ARCHITECTURE.md", architecture) })
        {
            var flat = Regex.Replace(text, @"\s+", " ").Replace("`", "", StringComparison.Ordinal);
            Assert.True(flat.Contains($"{sealType} default", StringComparison.Ordinal), $"{name} does not say the network's table ends in a {sealType} default");
            foreach (var other in types.Where(t => t != sealType))
            {
                Assert.False(flat.Contains($"{other} default", StringComparison.Ordinal), $"{name} says '{other} default'; the overlay installs a {sealType} default");
            }
            Assert.Matches($@"an {fenceType} route for every network's CIDR", flat);
        }

        // "table 100000+VNI", and the table the README's example looks at is the example network's.
        Assert.Contains($"table {Names.Table(0)}+VNI", Regex.Replace(agent, @"\s+", " "), StringComparison.Ordinal);
        var vni = uint.Parse(Regex.Match(Readme.Section("Using the API").Text, "\"vni\":(\\d+)").Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        var shown = Readme.Section("Running a node agent").ShellBlocks.SelectMany(b => Shell.Parse(b.Text, b.Line))
            .Where(c => c.Words.Contains("route") && c.Words.Contains("table")).Select(c => c.Words[c.Words.ToList().IndexOf("table") + 1]).ToList();
        Assert.NotEmpty(shown);
        Assert.All(shown, table => Assert.Equal(Names.Table(vni).ToString(System.Globalization.CultureInfo.InvariantCulture), table));
    }

    // ---- 10. "the config files are `dnsserver.json` and `nodeagent.json`, not appsettings.json"

    /// <summary>
    /// The configuration section names each program's file; each is in that program's project,
    /// copied beside its binary and read by the program; and every file a program reads is named.
    /// </summary>
    [Fact]
    public void ConfigurationFiles_NamedPerProgram_AreTheFilesEachProgramReads()
    {
        var text = Regex.Replace(Readme.Section("Configuration").Text, @"\s+", " ");
        var named = ConfigFileNamed().Matches(text).ToDictionary(m => m.Groups[2].Value, m => m.Groups[1].Value);
        var programs = new Dictionary<string, string> { ["silo"] = "src/Silo", ["node agent"] = "src/NodeAgent", ["DNS server"] = "src/DnsServer" };
        Assert.Equal(programs.Keys.Order(), named.Keys.Order());
        foreach (var (program, file) in named)
        {
            var project = Path.Combine(Root, programs[program]);
            Assert.True(File.Exists(Path.Combine(project, file)), $"README names {file} for the {program}; {programs[program]} has no such file");
            var csproj = File.ReadAllText(Directory.GetFiles(project, "*.csproj").Single());
            var source = File.ReadAllText(Path.Combine(project, "Program.cs"));
            if (file == "appsettings.json")
            {
                // Read by ASP.NET Core's builder from the content root, which the Web SDK copies it to.
                Assert.StartsWith("<Project Sdk=\"Microsoft.NET.Sdk.Web\">", csproj, StringComparison.Ordinal);
                Assert.Contains("ContentRootPath = AppContext.BaseDirectory", File.ReadAllText(Path.Combine(project, "Hosting/SiloApp.cs")), StringComparison.Ordinal);
            }
            else
            {
                Assert.Contains($"<Content Include=\"{file}\" CopyToOutputDirectory=", csproj, StringComparison.Ordinal);
                Assert.Contains($"ProgramDefaults.Apply(builder, \"{file}\")", source, StringComparison.Ordinal);
            }
            Assert.True(File.Exists(Path.Combine(AppContext.BaseDirectory, file)), $"{file} is not copied beside the binaries");
        }
        foreach (var program in Directory.GetFiles(Path.Combine(Root, "src"), "Program.cs", SearchOption.AllDirectories))
        {
            foreach (Match read in Regex.Matches(File.ReadAllText(program), "ProgramDefaults\\.Apply\\(builder, \"([^\"]+)\"\\)"))
            {
                Assert.True(named.ContainsValue(read.Groups[1].Value), $"{Path.GetRelativePath(Root, program)} reads {read.Groups[1].Value}, which README's configuration section does not name");
            }
        }
        Assert.DoesNotContain("`appsettings.json` beside the binary", text, StringComparison.Ordinal);
    }

    // ---- 10. "running the agent command as written reprograms the host itself: say so, and show how to run it in a namespace"

    /// <summary>
    /// README says that the agent programs the namespace it runs in, and every command that starts
    /// an agent runs it in a namespace the same block creates, holding its underlay address, and
    /// reaching a silo through a unix socket that the same block gives the silo (a namespace's
    /// loopback is its own).
    /// </summary>
    [Fact]
    public void NodeAgentCommands_RunInANamespaceOfTheirOwn_AndTheReadmeSaysWhy()
    {
        var section = Regex.Replace(Readme.Section("Running a node agent").Text, @"\s+", " ");
        Assert.Contains("the namespace it runs in", section, StringComparison.Ordinal);
        Assert.Contains("reprograms the host itself", section, StringComparison.Ordinal);

        var agents = 0;
        foreach (var (document, block) in AllBlocks())
        {
            var commands = Shell.Parse(block.Text, block.Line).ToList();
            foreach (var command in commands.Where(c => !c.Words.Contains("build") && c.Words.Any(w => w is "src/NodeAgent" || w.EndsWith("ControlPlane.NodeAgent.dll", StringComparison.Ordinal))))
            {
                agents++;
                var where = $"{document} line {command.Line}";
                Assert.True(command.Words is ["ip", "netns", "exec", _, ..], $"{where}: the agent runs in the namespace of whoever runs the command (the host's), not in one of its own");
                var ns = command.Words[3];
                var before = commands.TakeWhile(c => c != command).ToList();
                Assert.True(before.Any(c => c.Words.SequenceEqual(["ip", "netns", "add", ns])), $"{where}: namespace {ns} is not created before");
                var underlay = Option(command, "--Agent:UnderlayIp");
                Assert.True(before.Any(c => c.Words is ["ip", "-n", var n, "addr", "add", var a, ..] && n == ns && a.Split('/')[0] == underlay),
                    $"{where}: {ns} is not given the underlay address {underlay}");
                var controlPlane = Option(command, "--Agent:ControlPlane") ?? "";
                Assert.True(controlPlane.StartsWith("unix:", StringComparison.Ordinal), $"{where}: {controlPlane} is not reachable from a namespace of its own");
                var socket = controlPlane["unix:".Length..];
                Assert.True(before.Any(c => Option(c, "--Silo:UnixSocket") == socket), $"{where}: no silo of the block serves {socket}");
                var directory = Path.GetDirectoryName(socket)!;
                Assert.True(before.Any(c => c.Words is ["mkdir", "-p", var d] && d == directory) || directory == "/tmp",
                    $"{where}: nothing makes {directory}, where the silo's socket goes");
            }
        }
        Assert.True(agents > 0, "README shows no way to run a node agent");
    }

    // ---- 10. "a node created by hand goes not-ready after 40 s without an agent: say so"

    /// <summary>
    /// Wherever the README makes nodes by hand (Nodes/Create, or applying manifests that hold a
    /// Node), its section says that they turn not ready after the lease duration, and the number
    /// it gives is the control plane's default lease.
    /// </summary>
    [Fact]
    public void NodesMadeByHand_TheirSectionSaysTheyTurnNotReadyAfterTheDefaultLease()
    {
        var lease = new ControlPlaneOptions().NodeLeaseDuration;
        Assert.Equal(lease, TimeSpan.Parse(Setting("src/Silo/appsettings.json", "ControlPlane", "NodeLeaseDuration"), System.Globalization.CultureInfo.InvariantCulture));
        var seconds = (int)lease.TotalSeconds;
        Assert.Matches($@"\| `ControlPlane:NodeLeaseDuration` \| {Regex.Escape(lease.ToString())} \|", Readme.Text);

        var sections = 0;
        foreach (var section in Readme.Sections)
        {
            var byHand = section.ShellBlocks.SelectMany(b => Shell.Parse(b.Text, b.Line)).Where(c =>
                c.Words.Any(w => w.EndsWith("controlplane.v1.Nodes/Create", StringComparison.Ordinal))
                || (c.Words is ["netctl", "apply", ..] && !c.Words.Contains("--dry-run=client") && Option(c, "-f") is { } path && ManifestsHoldANode(path))).ToList();
            if (byHand.Count == 0) continue;
            sections++;
            var text = Regex.Replace(section.Text, @"\s+", " ");
            Assert.True(Regex.IsMatch(text, $@"\b{seconds} s after (it is|they are) created\b[^.]*(not ready|ready: false)"),
                $"README section '{section.Heading}' makes nodes by hand (line {byHand[0].Line}) but does not say that they turn not ready {seconds} s after they are created");
        }
        Assert.True(sections >= 2, "README should make nodes by hand in the API and netctl examples");
    }

    // ---- 10. "drop `sudo` where it is not needed"

    /// <summary>
    /// No command in README or docs/ goes through sudo (they are run in a root shell, as the tests
    /// and CI do; here sudo is not even installed), and each block of commands that needs root is
    /// introduced as such.
    /// </summary>
    [Fact]
    public void Commands_AreNotRunThroughSudo_AndThoseNeedingRootSaySo()
    {
        var needsRoot = new Regex(@"\bip (netns|-n|link)\b|scripts/cluster\.sh|demo/ControlPlane\.Demo|scripts/install-cni\.sh|\bapt-get\b|\s/etc/");
        foreach (var (document, markdown) in Documents())
        {
            foreach (var block in markdown.Blocks)
            {
                foreach (var command in Shell.Parse(block.Text, block.Line))
                {
                    Assert.False(command.Words.Contains("sudo"), $"{document} line {command.Line}: {string.Join(' ', command.Words)}");
                }
                if (needsRoot.IsMatch(block.Text))
                {
                    Assert.True(Regex.Replace(block.Introduction, @"\s+", " ").Contains("as root", StringComparison.OrdinalIgnoreCase),
                        $"{document} line {block.Line}: the block needs root, and the text before it does not say so");
                }
            }
            foreach (var (span, paragraph, line) in markdown.InlineCode())
            {
                Assert.False(Regex.IsMatch(span, @"(^|[;&|(]\s*)sudo\s+\S"), $"{document} line {line}: `{span}`");
                if (span.Contains(' ', StringComparison.Ordinal) && needsRoot.IsMatch(" " + span))
                {
                    var flat = Regex.Replace(paragraph, @"\s+", " ");
                    Assert.True(flat.Contains("as root", StringComparison.OrdinalIgnoreCase),
                        $"{document} line {line}: `{span}` needs root, and its paragraph does not say so");
                }
            }
        }
    }

    // ---- 11. "docs/ speaks of the project alone. It points to no file outside the repository, and every part it shows exists."

    /// <summary>
    /// Rules: (1) every relative link of README.md and docs/*.md resolves to a file or folder of
    /// the repository; (2) docs/ holds no URL to anything outside the repository (specifications
    /// are cited by name, as "RFC 1034 §4.3.2"; only loopback addresses and placeholders such as
    /// http://host:port may appear); (3) every repository path and script name either document
    /// mentions exists (build outputs under bin/ excepted); (4) every path in docs/ code spans
    /// names a file or folder of the repository (from its root, src/ or a project) or an API
    /// method; (5) every type name in docs/ code spans is one of the repository's, save the few
    /// library names listed here; (6) every netctl command shown exists in src/Cli/NetctlApp.cs.
    /// </summary>
    /// <summary>
    /// Every project under src/ has a row in the architecture's project table and a line in the
    /// README's repository tree, and each project it references is named with it in the
    /// reference diagram (an outside reader found Observability and the CNI plugin missing, and
    /// an arrow the project files do not have).
    /// </summary>
    [Fact]
    public void ProjectDocs_NameEveryProject_AndTheReferencesItsProjectFileHas()
    {
        var architecture = File.ReadAllText(Path.Combine(Root, "docs", "ARCHITECTURE.md"));
        var readme = File.ReadAllText(Path.Combine(Root, "README.md"));
        var diagram = architecture[architecture.IndexOf("## Projects", StringComparison.Ordinal)..];
        diagram = diagram[(diagram.IndexOf("```", StringComparison.Ordinal) + 3)..];
        var lines = diagram[..diagram.IndexOf("```", StringComparison.Ordinal)].Split('\n');
        foreach (var project in Directory.GetFiles(Path.Combine(Root, "src"), "*.csproj", SearchOption.AllDirectories))
        {
            var name = Path.GetFileName(Path.GetDirectoryName(project)!);
            Assert.Contains($"| `src/{name}` |", architecture);
            Assert.Matches($"(?m)^src/{Regex.Escape(name)} ", readme);
            foreach (Match reference in Regex.Matches(File.ReadAllText(project), @"ProjectReference Include=""\.\./([^/]+)/"))
            {
                var target = reference.Groups[1].Value;
                Assert.True(lines.Any(line => Regex.IsMatch(line, $@"\b{Regex.Escape(name)}\b") && Regex.IsMatch(line, $@"\b{Regex.Escape(target)}\b")),
                    $"no line of the reference diagram names {name} with {target}, which it references");
            }
        }
    }

    [Fact]
    public void Docs_PointOnlyIntoTheRepository_AndEveryPartTheyShowExists()
    {
        var problems = new List<string>();
        var apiMethods = ApiReflection.Descriptor.Services.SelectMany(s => s.Methods.Select(m => $"{s.Name}/{m.Name}")).ToHashSet();
        string[] notOurs = ["IPersistentState"]; // Orleans' own state bridge, which the docs say the grains bypass.
        var words = CodeWords();
        var (commands, subcommands) = NetctlCommands();

        foreach (var (document, markdown) in Documents())
        {
            var directory = Path.GetDirectoryName(Path.Combine(Root, document))!;
            var isDoc = document.StartsWith("docs/", StringComparison.Ordinal);
            // (1) relative links
            foreach (Match link in Regex.Matches(markdown.Text, @"\]\(([^)\s]+)\)"))
            {
                var target = link.Groups[1].Value;
                if (Regex.IsMatch(target, "^[a-z]+:")) continue;
                var path = Path.GetFullPath(Path.Combine(directory, target.Split('#')[0]));
                if (!path.StartsWith(Root, StringComparison.Ordinal) || !(File.Exists(path) || Directory.Exists(path)))
                {
                    problems.Add($"{document}: link {target} leads to nothing in the repository");
                }
            }
            // (2) no URL out of the repository in docs/
            if (isDoc)
            {
                foreach (Match url in Regex.Matches(markdown.Text, @"\b[a-z][a-z0-9+.-]*://([^/\s`)\]>]*)"))
                {
                    var host = url.Groups[1].Value.Split('@')[^1];
                    host = host.StartsWith('[') ? host[1..host.IndexOf(']', StringComparison.Ordinal)] : host.Split(':')[0];
                    var loopback = host == "localhost" || (IPAddress.TryParse(host, out var ip) && IPAddress.IsLoopback(ip));
                    if (!loopback && (host.Contains('.', StringComparison.Ordinal) || host.Length == 0))
                    {
                        problems.Add($"{document}: {url.Value} points outside the repository");
                    }
                }
            }
            // (3) repository paths and script names
            foreach (Match path in Regex.Matches(markdown.Text, @"(?<![\w./$-])((?:src|tests|bench|scripts|proto|examples|demo|docs|\.ci)/[\w./-]*[\w/])"))
            {
                var value = path.Groups[1].Value;
                if (value.Contains("/bin/", StringComparison.Ordinal) || value.Contains("/obj/", StringComparison.Ordinal)) continue;
                if (!File.Exists(Path.Combine(Root, value)) && !Directory.Exists(Path.Combine(Root, value)))
                {
                    problems.Add($"{document}: {value} is not in the repository");
                }
            }
            foreach (Match script in Regex.Matches(markdown.Text, @"(?<![\w./-])([\w-]+\.sh)\b"))
            {
                if (!RepositoryFileNames.Value.Contains(script.Groups[1].Value))
                {
                    problems.Add($"{document}: {script.Groups[1].Value} is not in the repository");
                }
            }
            // (4, 5) what docs/ code spans name
            if (isDoc)
            {
                foreach (var (span, _, line) in markdown.InlineCode())
                {
                    if (SpanPath().IsMatch(span) && !span.StartsWith('/') && !span.Split('/')[0].Contains('.', StringComparison.Ordinal)
                        && !apiMethods.Contains(span) && !ResolvesToRepositoryPath(span))
                    {
                        problems.Add($"{document} line {line}: `{span}` is neither a path of the repository nor an API method");
                    }
                    if (TypeName().Match(span) is { Success: true } type && !notOurs.Contains(type.Groups[1].Value) && !words.Contains(type.Groups[1].Value.Split('.')[^1]))
                    {
                        problems.Add($"{document} line {line}: `{span}` names nothing in the code");
                    }
                }
            }
            // (6) netctl commands, in code blocks and code spans
            var code = markdown.ShellBlocks.Select(b => (b.Text, b.Line)).Concat(markdown.InlineCode().Select(s => (s.Span, s.Line)));
            foreach (var (text, line) in code)
            {
                foreach (Match use in Regex.Matches(text, @"(?:^|[\s;(|&])netctl[ \t]+([a-z][\w-]*)(?:[ \t]+([a-z][\w-]*))?", RegexOptions.Multiline))
                {
                    var command = use.Groups[1].Value;
                    if (!commands.Contains(command))
                    {
                        problems.Add($"{document} line {line}: netctl has no command '{command}'");
                    }
                    else if (subcommands.TryGetValue(command, out var subs) && !subs.Contains(use.Groups[2].Value))
                    {
                        problems.Add($"{document} line {line}: netctl {command} has no subcommand '{use.Groups[2].Value}'");
                    }
                }
            }
        }
        Assert.True(problems.Count == 0, string.Join('\n', problems));
    }

    // ---------------------------------------------------------------- helpers

    private static IEnumerable<(string Document, Markdown Markdown)> Documents() =>
        DocFiles.Select(f => (Path.GetRelativePath(Root, f), Markdown.Load(f))).Prepend(("README.md", Readme));

    private static IEnumerable<(string Document, Block Block)> AllBlocks() =>
        Documents().SelectMany(d => d.Markdown.ShellBlocks.Select(b => (d.Document, b)));

    private static string? Option(ShellCommand command, string name)
    {
        foreach (var (word, i) in command.Words.Select((w, i) => (w, i)))
        {
            if (word.StartsWith(name + "=", StringComparison.Ordinal)) return word[(name.Length + 1)..];
            if (word == name && i + 1 < command.Words.Count) return command.Words[i + 1];
        }
        return null;
    }

    private static List<string> FlagValues(string[] flags, string name) =>
        [.. flags.Select((f, i) => (f, i)).Where(x => x.f == name && x.i + 1 < flags.Length).Select(x => flags[x.i + 1])];

    private static string Setting(string file, string section, string key)
    {
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(Root, file)));
        return json.RootElement.GetProperty(section).GetProperty(key).GetString()!;
    }

    private static bool ManifestsHoldANode(string path)
    {
        var full = Path.Combine(Root, path);
        var files = Directory.Exists(full) ? Directory.GetFiles(full) : File.Exists(full) ? [full] : [];
        return files.Any(f => Regex.IsMatch(File.ReadAllText(f), @"^kind:\s*Node\s*$|""kind""\s*:\s*""Node""", RegexOptions.Multiline));
    }

    private sealed record GrpcurlCall(string Service, string Method, string? Body, int Line);

    /// <summary>Every <c>$G … package.Service/Method</c> of the README, in order.</summary>
    private static IEnumerable<GrpcurlCall> GrpcurlCalls() =>
        Readme.Commands().Where(c => c.Words is ["$G", ..]).Select(c => (c, target: c.Words.LastOrDefault(w => Regex.IsMatch(w, @"^[\w.]+\.\w+/\w+$"))))
            .Where(x => x.target is not null)
            .Select(x => new GrpcurlCall(x.target![..x.target!.IndexOf('/', StringComparison.Ordinal)], x.target![(x.target!.IndexOf('/', StringComparison.Ordinal) + 1)..], Option(x.c, "-d"), x.c.Line));

    /// <summary>Services and their methods declared by <paramref name="files"/> and everything they import.</summary>
    private static Dictionary<string, HashSet<string>> ProtoServices(List<string> importPaths, List<string> files)
    {
        var services = new Dictionary<string, HashSet<string>>();
        var pending = new Queue<string>(files);
        var seen = new HashSet<string>();
        while (pending.TryDequeue(out var file))
        {
            if (!seen.Add(file)) continue;
            var path = importPaths.Select(p => Path.Combine(p, file)).FirstOrDefault(File.Exists);
            if (path is null)
            {
                Assert.StartsWith("google/protobuf/", file, StringComparison.Ordinal); // grpcurl carries the well-known types
                continue;
            }
            var text = File.ReadAllText(path);
            var package = Regex.Match(text, @"^package\s+([\w.]+);", RegexOptions.Multiline).Groups[1].Value;
            foreach (Match import in Regex.Matches(text, "^import\\s+\"([^\"]+)\";", RegexOptions.Multiline)) pending.Enqueue(import.Groups[1].Value);
            foreach (Match service in Regex.Matches(text, @"^service\s+(\w+)\s*\{(.*?)^\}", RegexOptions.Multiline | RegexOptions.Singleline))
            {
                services[$"{package}.{service.Groups[1].Value}"] = [.. Regex.Matches(service.Groups[2].Value, @"\brpc\s+(\w+)").Select(m => m.Groups[1].Value)];
            }
        }
        return services;
    }

    /// <summary>What grpcurl does first: the file containing the symbol, from the server's reflection.</summary>
    private static async Task<HashSet<string>?> ReflectedMethodsAsync(ServerReflection.ServerReflectionClient reflection, string service)
    {
        using var call = reflection.ServerReflectionInfo();
        await call.RequestStream.WriteAsync(new ServerReflectionRequest { FileContainingSymbol = service });
        Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None));
        var response = call.ResponseStream.Current;
        await call.RequestStream.CompleteAsync();
        if (response.MessageResponseCase != ServerReflectionResponse.MessageResponseOneofCase.FileDescriptorResponse) return null;
        var files = response.FileDescriptorResponse.FileDescriptorProto.Select(b => FileDescriptorProto.Parser.ParseFrom(b));
        return files.SelectMany(f => f.Service.Where(s => $"{f.Package}.{s.Name}" == service)).SelectMany(s => s.Method.Select(m => m.Name)).ToHashSet() is { Count: > 0 } methods ? methods : null;
    }

    private static string? NameIn(string comment) => Regex.Match(comment, @"\b([a-z0-9-]+(?:\.[a-z0-9-]+)+\.)(?=\s|$)") is { Success: true } m ? m.Groups[1].Value : null;

    /// <summary>A record line as dig prints it, with its TTL and spacing left out.</summary>
    private static string Record(string line)
    {
        var fields = line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
        return string.Join(' ', fields.Where((_, i) => i != 1));
    }

    /// <summary>dig against the test silo's DNS server; retried while the server has not caught up with the last writes.</summary>
    private static async Task<string> DigAsync(int port, params string[] arguments)
    {
        Assert.True(File.Exists("/usr/bin/dig") || (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Any(d => File.Exists(Path.Combine(d, "dig"))),
            "dig (Debian package bind9-dnsutils) is needed to ask the README's DNS questions");
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            var info = new ProcessStartInfo("dig") { RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var argument in (string[])["@127.0.0.1", "-p", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "+time=2", "+tries=1", .. arguments]) info.ArgumentList.Add(argument);
            using var process = Process.Start(info) ?? throw new InvalidOperationException("dig did not start");
            var output = await process.StandardOutput.ReadToEndAsync();
            await process.WaitForExitAsync();
            var result = output.Trim();
            if ((result.Length > 0 && !result.Contains("SERVFAIL", StringComparison.Ordinal)) || deadline.Elapsed > TimeSpan.FromSeconds(10)) return result;
            await Task.Delay(100);
        }
    }

    private static bool ResolvesToRepositoryPath(string span)
    {
        var relative = span.TrimEnd('/');
        IEnumerable<string> bases = [Root, Path.Combine(Root, "src"), .. Directory.GetDirectories(Path.Combine(Root, "src"))];
        return bases.Any(b => File.Exists(Path.Combine(b, relative)) || File.Exists(Path.Combine(b, relative + ".cs")) || Directory.Exists(Path.Combine(b, relative)));
    }

    private static readonly Lazy<HashSet<string>> RepositoryFileNames = new(() =>
        Directory.EnumerateFiles(Root, "*", SearchOption.AllDirectories)
            .Where(f => !f.Contains("/.git/", StringComparison.Ordinal) && !f.Contains("/bin/", StringComparison.Ordinal) && !f.Contains("/obj/", StringComparison.Ordinal) && !f.Contains("/node_modules/", StringComparison.Ordinal))
            .Select(Path.GetFileName).OfType<string>().ToHashSet());

    /// <summary>Every identifier of the repository's own code (C#, protos and project files, tests and benchmarks included).</summary>
    private static HashSet<string> CodeWords()
    {
        var words = new HashSet<string>();
        foreach (var folder in new[] { "src", "tests", "bench", "proto", "demo" })
        {
            foreach (var file in Directory.EnumerateFiles(Path.Combine(Root, folder), "*", SearchOption.AllDirectories)
                .Where(f => Path.GetExtension(f) is ".cs" or ".proto" or ".csproj" or ".props" && !f.Contains("/obj/", StringComparison.Ordinal) && !f.Contains("/bin/", StringComparison.Ordinal)))
            {
                foreach (Match word in Regex.Matches(File.ReadAllText(file), @"\w+")) words.Add(word.Value);
            }
        }
        return words;
    }

    /// <summary>netctl's top-level commands (registered in NetctlApp) and, per command, its subcommands.</summary>
    private static (HashSet<string> Commands, Dictionary<string, HashSet<string>> Subcommands) NetctlCommands()
    {
        var app = File.ReadAllText(Path.Combine(Root, "src/Cli/NetctlApp.cs"));
        var commands = new HashSet<string>();
        var subcommands = new Dictionary<string, HashSet<string>>();
        foreach (Match registered in Regex.Matches(app, @"\b(\w+)Command\.Create\("))
        {
            var file = Path.Combine(Root, "src/Cli/Commands", registered.Groups[1].Value + "Command.cs");
            var names = Regex.Matches(File.ReadAllText(file), "new Command\\(\"([\\w-]+)\"").Select(m => m.Groups[1].Value).ToList();
            var name = names.Single(n => n == registered.Groups[1].Value.ToLowerInvariant());
            commands.Add(name);
            if (names.Count > 1) subcommands[name] = [.. names.Where(n => n != name)];
        }
        Assert.NotEmpty(commands);
        return (commands, subcommands);
    }

    [GeneratedRegex(@"`([\w.-]+\.json)` for the ([A-Za-z ]+?)[,;)]")]
    private static partial Regex ConfigFileNamed();

    [GeneratedRegex(@"^[\w.-]+(/[\w.-]+)*/$|^[\w.-]+(/[\w.-]+)+$")]
    private static partial Regex SpanPath();

    [GeneratedRegex(@"^((?:[A-Z][a-z0-9]+[A-Z]\w*|[A-Z]{2,}[a-z]\w*)(?:\.[A-Z]\w*)*)(?:<\w+>)?$")]
    private static partial Regex TypeName();

    // ---------------------------------------------------------------- the silo the examples run on

    /// <summary>
    /// One silo for the class, started on first use: its embedded DNS server on a free loopback
    /// port, following the silo over a unix socket; README's gRPC examples are run on it once, in
    /// order, as a reader would on a fresh silo.
    /// </summary>
    public sealed class ReadmeSilo : IAsyncLifetime
    {
        private readonly string _socket = Path.Combine(Path.GetTempPath(), $"cp-readme-{Guid.NewGuid():N}.sock");
        private Task<SiloInstance>? _silo;
        private readonly Lock _gate = new();

        internal Task<SiloInstance> SiloAsync()
        {
            lock (_gate) return _silo ??= StartAsync();
        }

        private async Task<SiloInstance> StartAsync()
        {
            var silo = await SiloInstance.StartAsync("--Dns:Enabled=true", "--Dns:Listen=127.0.0.1:0", $"--Silo:UnixSocket={_socket}");
            try
            {
                await RunExamplesAsync(silo);
            }
            catch
            {
                await silo.DisposeAsync();
                throw;
            }
            return silo;
        }

        private static async Task RunExamplesAsync(SiloInstance silo)
        {
            foreach (var call in GrpcurlCalls())
            {
                var service = ServiceDescriptor(call.Service);
                var method = service.FindMethodByName(call.Method);
                Assert.True(method is not null, $"README line {call.Line}: {call.Service} has no method {call.Method}");
                // Streams are left out, and so is WaitProgrammed: it changes nothing, and its first call after a
                // start waits 7 s for agents' reports (ConvergenceApiTests cover it).
                if (method!.IsServerStreaming || method.IsClientStreaming || method.Name == "WaitProgrammed") continue;
                var request = call.Body is null ? (IMessage)Activator.CreateInstance(method.InputType.ClrType)! : JsonParser.Default.Parse(call.Body, method.InputType);
                var grpcMethod = new Method<IMessage, IMessage>(MethodType.Unary, service.FullName, method.Name, Marshaller(method.InputType), Marshaller(method.OutputType));
                var started = Stopwatch.StartNew();
                while (true)
                {
                    try
                    {
                        await silo.Client.Invoker.AsyncUnaryCall(grpcMethod, null, new CallOptions(deadline: DateTime.UtcNow.AddSeconds(30)), request);
                        break;
                    }
                    catch (RpcException e) when (e.StatusCode == StatusCode.NotFound && started.Elapsed < TimeSpan.FromSeconds(5))
                    {
                        // A derived object (a service's endpoint set) appears a moment after what it derives from:
                        // a reader typing the next command never sees the gap.
                        await Task.Delay(50);
                    }
                    catch (RpcException e)
                    {
                        Assert.Fail($"README line {call.Line}: {call.Service}/{call.Method} fails on a fresh silo: {e.Status}");
                    }
                }
            }
        }

        private static Google.Protobuf.Reflection.ServiceDescriptor ServiceDescriptor(string name) =>
            new[] { ApiReflection.Descriptor, Grpc.Health.V1.HealthReflection.Descriptor }.SelectMany(f => f.Services).SingleOrDefault(s => s.FullName == name)
            ?? throw new InvalidOperationException($"no compiled service {name}");

        private static Marshaller<IMessage> Marshaller(MessageDescriptor type) =>
            Marshallers.Create(m => m.ToByteArray(), bytes => type.Parser.ParseFrom(bytes));

        public Task InitializeAsync() => Task.CompletedTask;

        public async Task DisposeAsync()
        {
            try
            {
                if (_silo is { IsCompletedSuccessfully: true })
                {
                    await (await _silo).DisposeAsync();
                }
            }
            finally
            {
                File.Delete(_socket);
            }
        }
    }

    // ---------------------------------------------------------------- reading Markdown and shell

    /// <summary>A fenced block: its text, the line of its first line, and the paragraph just before it.</summary>
    private sealed record Block(string Language, string Text, int Line, string Introduction);

    private sealed record Section(string Heading, string Text, IReadOnlyList<Block> Blocks)
    {
        public IEnumerable<Block> ShellBlocks => Blocks.Where(b => b.Language is "sh" or "bash");
    }

    private sealed class Markdown
    {
        private Markdown(string text)
        {
            Text = text;
            var lines = text.Split('\n');
            var blocks = new List<Block>();
            var sections = new List<Section>();
            var prose = new List<(string Text, int Line)>();
            string heading = "";
            var sectionStart = 0;
            var sectionBlocks = new List<Block>();
            for (var i = 0; i < lines.Length; i++)
            {
                if (lines[i].StartsWith("## ", StringComparison.Ordinal))
                {
                    sections.Add(new Section(heading, string.Join('\n', lines[sectionStart..i]), sectionBlocks));
                    (heading, sectionStart, sectionBlocks) = (lines[i][3..].Trim(), i, []);
                }
                if (lines[i].StartsWith("```", StringComparison.Ordinal))
                {
                    var start = i;
                    var language = lines[i][3..].Trim();
                    var end = i + 1;
                    while (end < lines.Length && !lines[end].StartsWith("```", StringComparison.Ordinal)) end++;
                    var before = start;
                    while (before > 0 && lines[before - 1].Trim().Length == 0) before--;
                    var paragraphStart = before;
                    while (paragraphStart > 0 && lines[paragraphStart - 1].Trim().Length > 0 && !lines[paragraphStart - 1].StartsWith("```", StringComparison.Ordinal)) paragraphStart--;
                    var block = new Block(language, string.Join('\n', lines[(start + 1)..end]), start + 2, string.Join('\n', lines[paragraphStart..before]));
                    blocks.Add(block);
                    sectionBlocks.Add(block);
                    i = end;
                    continue;
                }
                prose.Add((lines[i], i + 1));
            }
            sections.Add(new Section(heading, string.Join('\n', lines[sectionStart..]), sectionBlocks));
            Blocks = blocks;
            Sections = sections;
            Prose = prose;
        }

        public string Text { get; }

        public IReadOnlyList<Block> Blocks { get; }

        public IReadOnlyList<Section> Sections { get; }

        private List<(string Text, int Line)> Prose { get; }

        public static Markdown Load(string path) => new(File.ReadAllText(path));

        public Section Section(string heading) => Sections.Single(s => s.Heading == heading);

        public IEnumerable<Block> ShellBlocks => Blocks.Where(b => b.Language is "sh" or "bash");

        /// <summary>Every command of every shell block, in order.</summary>
        public IEnumerable<ShellCommand> Commands() => ShellBlocks.SelectMany(b => Shell.Parse(b.Text, b.Line));

        /// <summary>Code spans outside fenced blocks, with their paragraph (spans may not cross lines here, except by a line break).</summary>
        public IEnumerable<(string Span, string Paragraph, int Line)> InlineCode()
        {
            var paragraphs = new List<List<(string Text, int Line)>>();
            var current = new List<(string Text, int Line)>();
            foreach (var line in Prose)
            {
                if (line.Text.Trim().Length == 0)
                {
                    if (current.Count > 0) paragraphs.Add(current);
                    current = [];
                }
                else current.Add(line);
            }
            if (current.Count > 0) paragraphs.Add(current);
            foreach (var paragraph in paragraphs)
            {
                var text = string.Join('\n', paragraph.Select(p => p.Text));
                foreach (Match span in Regex.Matches(text, "`([^`]+)`"))
                {
                    var line = paragraph[text[..span.Index].Count(c => c == '\n')].Line;
                    yield return (Regex.Replace(span.Groups[1].Value, @"\s*\n\s*", " "), text, line);
                }
            }
        }
    }

    /// <summary>A simple command: its words (quotes removed) and the comment ending its line.</summary>
    private sealed record ShellCommand(IReadOnlyList<string> Words, string? Comment, int Line);

    /// <summary>
    /// Enough of the POSIX shell's word splitting for documentation: quotes (a single-quoted
    /// argument may span lines), backslash-newline continuations, comments, and ; &amp;&amp; || |
    /// between commands. A line holding only a comment is a command without words.
    /// </summary>
    private static class Shell
    {
        public static IEnumerable<ShellCommand> Parse(string text, int firstLine)
        {
            var commands = new List<ShellCommand>();
            var words = new List<string>();
            var word = new StringBuilder();
            var inWord = false;
            var line = firstLine;
            var startLine = firstLine;
            void EndWord()
            {
                if (inWord) words.Add(word.ToString());
                word.Clear();
                inWord = false;
            }
            void EndCommand(string? comment)
            {
                EndWord();
                if (words.Count > 0 || comment is not null) commands.Add(new ShellCommand([.. words], comment, startLine));
                words = [];
            }
            for (var i = 0; i < text.Length; i++)
            {
                var c = text[i];
                if (!inWord && words.Count == 0 && c is ' ' or '\t') continue;
                if (words.Count == 0 && !inWord) startLine = line;
                switch (c)
                {
                    case '\\' when i + 1 < text.Length && text[i + 1] == '\n':
                        i++;
                        line++;
                        break;
                    case '\\' when i + 1 < text.Length:
                        word.Append(text[++i]);
                        inWord = true;
                        break;
                    case '\'' or '"':
                        var close = text.IndexOf(c, i + 1);
                        if (close < 0) close = text.Length;
                        var quoted = text[(i + 1)..close];
                        line += quoted.Count(ch => ch == '\n');
                        word.Append(quoted);
                        inWord = true;
                        i = close;
                        break;
                    case '#' when !inWord:
                        var end = text.IndexOf('\n', i);
                        if (end < 0) end = text.Length;
                        EndCommand(text[(i + 1)..end].Trim());
                        i = end;
                        line++;
                        break;
                    case '\n':
                        EndCommand(null);
                        line++;
                        break;
                    case ';':
                        EndCommand(null);
                        break;
                    case '&' or '|' when i + 1 < text.Length && text[i + 1] == c:
                        EndCommand(null);
                        i++;
                        break;
                    case '|':
                        EndCommand(null);
                        break;
                    case ' ' or '\t':
                        EndWord();
                        break;
                    default:
                        word.Append(c);
                        inWord = true;
                        break;
                }
            }
            EndCommand(null);
            return commands;
        }
    }
}
