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
            ManifestText.WriteAnswer(terminal.Out, parse.GetValue(output), answer, o =>
            {
                o.WriteLine($"{"Cluster:",-16}{answer.ClusterId}");
                o.WriteLine($"{"ClusterSet:",-16}{answer.ClusterSet}");
                o.WriteLine($"{"Service ranges:",-16}{Format.List(answer.ServiceRanges)}");
            });
            return ExitCodes.Success;
        });
        return new Command("clusterset", "ClusterSet commands (peers, exports and imports are kinds: get clusterpeers, serviceexports, serviceimports)") { info };
    }
}
