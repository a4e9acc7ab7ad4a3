using System.Text.RegularExpressions;
using ControlPlane.Dns.Feed;
using ControlPlane.Dns.Forwarding;
using ControlPlane.Dns.Transport;
using ControlPlane.Dns.Zones;
using ControlPlane.Grains;
using ControlPlane.NodeAgent;
using ControlPlane.Storage.GrainStorage;
using ControlPlane.Silo.Hosting;
using YamlDotNet.RepresentationModel;

namespace ControlPlane.Silo.Tests;

/// <summary>
/// No Docker engine runs here, so docker-compose.yml is checked statically: every build context,
/// Dockerfile and project exists, every environment variable is a configuration key the program
/// reads, and published ports match the ports the programs listen on.
/// </summary>
public sealed partial class DockerComposeTests
{
    private static readonly Dictionary<string, Type[]> Sections = new()
    {
        ["Silo"] = [typeof(SiloOptions)],
        ["Cluster"] = [typeof(ClusterOptions)],
        ["Store"] = [typeof(StoreOptions)],
        ["ControlPlane"] = [typeof(ControlPlaneOptions)],
        ["Agent"] = [typeof(AgentOptions)],
        ["Dns"] = [typeof(DnsTransportOptions), typeof(ClusterZoneOptions), typeof(DnsFeedOptions), typeof(ForwarderOptions)],
        ["Tls"] = [typeof(ControlPlane.Silo.Security.TlsOptions)],
        ["Dns__RateLimit"] = [typeof(ControlPlane.Dns.Handling.ResponseRateLimitOptions)],
        ["Limits"] = [typeof(ControlPlane.Silo.Security.LimitsOptions)],
        ["Audit"] = [typeof(ControlPlane.Silo.Security.AuditOptions)],
    };

    private static YamlMappingNode Services()
    {
        var yaml = new YamlStream();
        yaml.Load(new StringReader(File.ReadAllText(Path.Combine(RepositoryPaths.Root, "docker-compose.yml"))));
        return (YamlMappingNode)((YamlMappingNode)yaml.Documents[0].RootNode)["services"];
    }

    /// <summary>The services built from this repository (the others run published images).</summary>
    private static IEnumerable<(string Name, YamlMappingNode Service)> Built() =>
        Services().Select(s => (s.Key.ToString(), (YamlMappingNode)s.Value)).Where(s => s.Item2.Children.ContainsKey("build"));

    private static string Env(YamlMappingNode service, string key) => ((YamlMappingNode)service["environment"])[key].ToString();

    [Fact]
    public void TheTopology_IsRedisPostgresThreeSilosADnsServerAndTwoAgents()
    {
        var names = Services().Select(s => s.Key.ToString()).Order().ToList();
        Assert.Equal(["agent-1", "agent-2", "dns", "pki", "postgres", "redis", "silo-1", "silo-2", "silo-3"], names);
        var services = Services();
        Assert.Matches(@"^redis:\d", services["redis"]["image"].ToString());
        Assert.Matches(@"^postgres:15", services["postgres"]["image"].ToString());
        var postgres = (YamlMappingNode)services["postgres"];
        foreach (var silo in Built().Where(s => s.Name.StartsWith("silo-", StringComparison.Ordinal)).Select(s => s.Service))
        {
            Assert.Equal("redis", Env(silo, "CONTROLPLANE_Cluster__Membership"));
            Assert.Equal("redis:6379", Env(silo, "CONTROLPLANE_Cluster__Redis"));
            Assert.Equal("postgres", Env(silo, "CONTROLPLANE_Store__Provider"));
            var connection = new Npgsql.NpgsqlConnectionStringBuilder(Env(silo, "CONTROLPLANE_Store__Postgres"));
            Assert.Equal(("postgres", Env(postgres, "POSTGRES_USER"), Env(postgres, "POSTGRES_PASSWORD"), Env(postgres, "POSTGRES_DB")),
                (connection.Host, connection.Username, connection.Password, connection.Database));
        }
        Assert.Equal(3, Built().Select(s => s.Service).Where(s => s.Children.ContainsKey("environment") && ((YamlMappingNode)s["environment"]).Children.ContainsKey("CONTROLPLANE_Store__SiloId"))
            .Select(s => Env(s, "CONTROLPLANE_Store__SiloId")).Distinct().Count());
    }

    [Fact]
    public void EveryService_BuildsAProjectThatExists()
    {
        foreach (var (name, node) in Built())
        {
            var build = (YamlMappingNode)((YamlMappingNode)node)["build"];
            var context = Path.Combine(RepositoryPaths.Root, build["context"].ToString());
            var dockerfile = Path.Combine(context, build["dockerfile"].ToString());
            Assert.True(Directory.Exists(context), $"{name}: build context {context} is missing");
            Assert.True(File.Exists(dockerfile), $"{name}: {dockerfile} is missing");
            var publish = PublishLine().Match(File.ReadAllText(dockerfile));
            Assert.True(publish.Success, $"{name}: {dockerfile} publishes no project");
            var project = Path.Combine(context, publish.Groups[1].Value);
            Assert.True(Directory.EnumerateFiles(project, "*.csproj").Any(), $"{name}: {project} holds no project");
        }
    }

    [Fact]
    public void EveryEnvironmentVariable_IsAConfigurationKeyOfItsProgram()
    {
        foreach (var (name, node) in Built())
        {
            if (!((YamlMappingNode)node).Children.TryGetValue("environment", out var environment)) continue;
            foreach (var (key, _) in (YamlMappingNode)environment)
            {
                var match = EnvironmentKey().Match(key.ToString());
                Assert.True(match.Success, $"{name}: {key} is not CONTROLPLANE_<Section>__<Key>");
                var section = match.Groups[1].Value;
                var setting = match.Groups[2].Value;
                Assert.True(Sections.TryGetValue(section, out var types), $"{name}: no configuration section '{section}'");
                var known = types.SelectMany(t => t.GetProperties()).Select(p => p.Name).Append(section == "Dns" ? "Enabled" : "").ToHashSet();
                Assert.Contains(setting, known);
            }
        }
    }

    [Fact]
    public void PublishedPorts_MatchWhatTheProgramsListenOn_AndEveryClientListsEverySilo()
    {
        var silos = Built().Where(s => s.Name.StartsWith("silo-", StringComparison.Ordinal)).ToList();
        Assert.Equal(3, silos.Count);
        foreach (var (_, silo) in silos)
        {
            var port = Env(silo, "CONTROLPLANE_Silo__Port");
            Assert.Contains(((YamlSequenceNode)silo["ports"]).Children, p => p.ToString().EndsWith(":" + port, StringComparison.Ordinal));
        }
        var everySilo = string.Join(',', silos.Select(s => $"https://{s.Name}:{Env(s.Service, "CONTROLPLANE_Silo__Port")}"));
        var dns = (YamlMappingNode)Services()["dns"];
        var listen = System.Net.IPEndPoint.Parse(Env(dns, "CONTROLPLANE_Dns__Listen"));
        var ports = ((YamlSequenceNode)dns["ports"]).Children.Select(p => p.ToString()).ToList();
        Assert.Contains($":{listen.Port}/udp", string.Join(' ', ports));
        Assert.Contains($":{listen.Port}/tcp", string.Join(' ', ports));
        Assert.Equal(everySilo, Env(dns, "CONTROLPLANE_Dns__ControlPlane"));
        var agents = Built().Where(s => s.Name.StartsWith("agent", StringComparison.Ordinal)).ToList();
        Assert.Equal(2, agents.Count);
        foreach (var (_, agent) in agents)
        {
            Assert.Equal(everySilo, Env(agent, "CONTROLPLANE_Agent__ControlPlane"));
        }
    }

    /// <summary>
    /// Mutual TLS is on: the pki service issues a certificate for every silo (with its host name),
    /// agent (named as its node), the DNS server and an admin, and each program is given its own.
    /// </summary>
    [Fact]
    public void MutualTls_EveryProgramHasItsOwnCertificate_IssuedByThePkiService()
    {
        var services = Services();
        var script = ((YamlSequenceNode)services["pki"]["command"]).Children[0].ToString();
        Assert.Contains("netctl pki init --dir /pki", script);
        foreach (var (name, service) in Built().Where(s => s.Name != "pki"))
        {
            var dependsOn = (YamlMappingNode)service["depends_on"];
            Assert.Equal("service_completed_successfully", dependsOn["pki"]["condition"].ToString());
            Assert.Contains("./pki:/pki:ro", ((YamlSequenceNode)service["volumes"]).Children.Select(v => v.ToString()));
            var environment = (YamlMappingNode)service["environment"];
            var (prefix, certificate) = name.StartsWith("silo-", StringComparison.Ordinal) ? ("Tls", "Certificate")
                : name == "dns" ? ("Dns", "Certificate") : ("Agent", "Certificate");
            var file = environment[$"CONTROLPLANE_{prefix}__{certificate}"].ToString();
            var issued = System.IO.Path.GetFileNameWithoutExtension(file);
            Assert.Equal($"/pki/{issued}.crt", file);
            Assert.Equal($"/pki/{issued}.key", environment[$"CONTROLPLANE_{prefix}__Key"].ToString());
            Assert.Equal("/pki/ca.crt", environment[$"CONTROLPLANE_{prefix}__{(prefix == "Tls" ? "ClientCa" : "Ca")}"].ToString());
            Assert.Contains(issued == "dns" ? "--name dns --role dns" : name.StartsWith("silo-", StringComparison.Ordinal) ? "--role silo" : "--role agent", script);
            if (prefix == "Agent") Assert.Equal(Env(service, "CONTROLPLANE_Agent__NodeName"), issued);
        }
    }

    /// <summary>
    /// A first start works without racing: the silos wait until PostgreSQL and Redis answer their
    /// health checks (a silo that cannot reach the store stops), and start again when they stop;
    /// the agents get forwarding from the runtime (a container's /proc/sys is read-only).
    /// </summary>
    [Fact]
    public void Startup_WaitsForHealthyStores_RestartsOnFailure_AndAgentsForwardBySysctl()
    {
        var services = Services();
        foreach (var store in new[] { "postgres", "redis" }) Assert.True(((YamlMappingNode)services[store]).Children.ContainsKey("healthcheck"), store);
        foreach (var (name, service) in Built().Where(s => s.Name != "pki"))
        {
            Assert.Equal("on-failure", service["restart"].ToString());
            var dependsOn = (YamlMappingNode)service["depends_on"];
            foreach (var store in new[] { "postgres", "redis" }.Where(s => dependsOn.Children.ContainsKey(s)))
            {
                Assert.Equal("service_healthy", dependsOn[store]["condition"].ToString());
            }
            if (name.StartsWith("agent-", StringComparison.Ordinal))
            {
                var sysctls = (YamlMappingNode)service["sysctls"];
                Assert.Equal("1", sysctls["net.ipv4.ip_forward"].ToString());
                Assert.Equal("1", sysctls["net.ipv6.conf.all.forwarding"].ToString());
            }
        }
        Assert.All(Built().Where(s => s.Name.StartsWith("silo-", StringComparison.Ordinal)), s => Assert.Equal("service_healthy", s.Service["depends_on"]["postgres"]["condition"].ToString()));
    }

    [GeneratedRegex(@"dotnet publish (\S+)")]
    private static partial Regex PublishLine();

    [GeneratedRegex(@"^CONTROLPLANE_([A-Za-z]+(?:__[A-Za-z]+)*?)__([A-Za-z0-9]+)$")]
    private static partial Regex EnvironmentKey();
}
