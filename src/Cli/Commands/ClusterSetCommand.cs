using System.CommandLine;
using ControlPlane.Cli.Output;

namespace ControlPlane.Cli.Commands;

/// <summary>
/// <c>netctl clusterset info</c>: the answering silo's place in its ClusterSet (ClusterSet/GetInfo):
/// this cluster's id (what its peers name their ClusterPeer for it), the set's name, and the
/// service ranges its ClusterIPs and the ClusterSetIPs of its imports come from.
/// </summary>
internal static class ClusterSetCommand
{
    public static Command Create(GlobalOptions global, Terminal terminal)
    {
        var output = GlobalOptions.Output(OutputFormat.Table, OutputFormat.Json, OutputFormat.Yaml);
        var info = new Command("info", "This cluster's id, its ClusterSet and its service ranges") { output };
        info.SetAction(async (parse, cancellationToken) =>
        {
            using var context = global.Context(parse, terminal);
            var answer = await context.Servers.CallAsync((c, o) => c.GetClusterInfoAsync(o), cancellationToken);
            switch (parse.GetValue(output))
            {
                case OutputFormat.Json:
                    terminal.Out.WriteLine(ManifestText.Json(ManifestText.MessageJson(answer)));
                    break;
                case OutputFormat.Yaml:
                    terminal.Out.Write(ManifestText.Yaml(ManifestText.MessageJson(answer)));
                    break;
                default:
                    terminal.Out.WriteLine($"{"Cluster:",-16}{answer.ClusterId}");
                    terminal.Out.WriteLine($"{"ClusterSet:",-16}{answer.ClusterSet}");
                    terminal.Out.WriteLine($"{"Service ranges:",-16}{Format.List(answer.ServiceRanges)}");
                    break;
            }
            return ExitCodes.Success;
        });
        return new Command("clusterset", "ClusterSet commands (peers, exports and imports are kinds: get clusterpeers, serviceexports, serviceimports)") { info };
    }
}
