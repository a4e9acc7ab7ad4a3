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
    };

    private static YamlMappingNode Services()
    {
        var yaml = new YamlStream();
        yaml.Load(new StringReader(File.ReadAllText(Path.Combine(RepositoryPaths.Root, "docker-compose.yml"))));
        return (YamlMappingNode)((YamlMappingNode)yaml.Documents[0].RootNode)["services"];
    }

    [Fact]
    public void EveryService_BuildsAProjectThatExists()
    {
        foreach (var (name, node) in Services())
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
        foreach (var (name, node) in Services())
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
    public void PublishedPorts_MatchWhatTheProgramsListenOn()
    {
        var services = Services();
        var silo = (YamlMappingNode)services["silo"];
        var siloPort = ((YamlMappingNode)silo["environment"])["CONTROLPLANE_Silo__Port"].ToString();
        Assert.Contains(((YamlSequenceNode)silo["ports"]).Children, p => p.ToString().EndsWith(":" + siloPort, StringComparison.Ordinal));
        var dns = (YamlMappingNode)services["dns"];
        var listen = System.Net.IPEndPoint.Parse(((YamlMappingNode)dns["environment"])["CONTROLPLANE_Dns__Listen"].ToString());
        var ports = ((YamlSequenceNode)dns["ports"]).Children.Select(p => p.ToString()).ToList();
        Assert.Contains($":{listen.Port}/udp", string.Join(' ', ports));
        Assert.Contains($":{listen.Port}/tcp", string.Join(' ', ports));
        foreach (var agent in services.Children.Where(c => c.Key.ToString().StartsWith("agent", StringComparison.Ordinal)))
        {
            var address = ((YamlMappingNode)((YamlMappingNode)agent.Value)["environment"])["CONTROLPLANE_Agent__ControlPlane"].ToString();
            Assert.Equal($"http://silo:{siloPort}", address);
        }
    }

    [GeneratedRegex(@"dotnet publish (\S+)")]
    private static partial Regex PublishLine();

    [GeneratedRegex(@"^CONTROLPLANE_([A-Za-z]+)__([A-Za-z0-9]+)$")]
    private static partial Regex EnvironmentKey();
}
