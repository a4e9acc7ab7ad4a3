using System.CommandLine;
using System.Globalization;
using System.Net;
using ControlPlane.Cli.Output;
using ControlPlane.Cli.Resources;
using ControlPlane.Contracts.V1;

namespace ControlPlane.Cli.Commands;

/// <summary>
/// <c>netctl explain SRC DST --port P/PROTO</c>: may SRC reach DST, by the stored network policies
/// (NetworkPolicies/Explain). SRC and DST are endpoints (NAMESPACE/NAME, or NAME with -n; add
/// @ADDRESS to pick one of a dual-stack endpoint's addresses) or plain IP addresses. The exit code
/// is 0 for either answer.
/// </summary>
internal static class ExplainCommand
{
    public static Command Create(GlobalOptions global, Terminal terminal)
    {
        var source = new Argument<string>("source") { Description = "Source: NAMESPACE/NAME[@ADDRESS], NAME with -n, or an IP address" };
        var destination = new Argument<string>("destination") { Description = "Destination: NAMESPACE/NAME[@ADDRESS], NAME with -n, or an IP address" };
        var port = new Option<string>("--port", "-p") { Description = "Destination port and protocol: 8080/TCP, 53/UDP, 9/SCTP (protocol defaults to TCP)", Required = true };
        var output = GlobalOptions.Output(OutputFormat.Table, OutputFormat.Json, OutputFormat.Yaml);
        var command = new Command("explain", "Say whether network policy lets SRC connect to DST on a port, and which rules decide") { source, destination, port, output };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var (number, protocol) = ParsePort(parse.GetValue(port)!);
            using var context = global.Context(parse, terminal);
            var request = new ExplainRequest
            {
                Source = Peer(context, parse.GetValue(source)!),
                Destination = Peer(context, parse.GetValue(destination)!),
                Port = number,
                Protocol = protocol,
            };
            var answer = await context.Servers.CallAsync((c, o) => c.ExplainAsync(request, o), cancellationToken);
            ManifestText.WriteAnswer(terminal.Out, parse.GetValue(output), answer, o => Print(o, request, answer));
            return ExitCodes.Success;
        });
        return command;
    }

    public static (uint Port, Protocol Protocol) ParsePort(string text)
    {
        var slash = text.IndexOf('/', StringComparison.Ordinal);
        var numberText = slash < 0 ? text : text[..slash];
        var protocolText = slash < 0 ? "TCP" : text[(slash + 1)..];
        if (!uint.TryParse(numberText, NumberStyles.None, CultureInfo.InvariantCulture, out var number) || number is 0 or > 65535)
            throw CliException.Usage($"--port '{text}': the port must be 1..65535");
        var protocol = protocolText.ToUpperInvariant() switch
        {
            "TCP" => Protocol.Tcp,
            "UDP" => Protocol.Udp,
            "SCTP" => Protocol.Sctp,
            _ => throw CliException.Usage($"--port '{text}': the protocol must be TCP, UDP or SCTP"),
        };
        return (number, protocol);
    }

    private static ExplainPeer Peer(CommandContext context, string text)
    {
        if (IPAddress.TryParse(text, out var address)) return new ExplainPeer { Ip = address.ToString() };
        var at = text.IndexOf('@', StringComparison.Ordinal);
        var ip = string.Empty;
        if (at >= 0)
        {
            if (!IPAddress.TryParse(text[(at + 1)..], out var chosen)) throw CliException.Usage($"'{text}': after @ comes one of the endpoint's IP addresses");
            ip = chosen.ToString();
            text = text[..at];
        }
        var (ns, name) = context.Reference(ResourceKinds.Endpoint, text, qualifiedWins: true);
        return new ExplainPeer { Namespace = ns, Name = name, Ip = ip };
    }

    private static string Show(ExplainPeer peer) =>
        peer.Name.Length == 0 ? peer.Ip : $"{peer.Namespace}/{peer.Name}{(peer.Ip.Length > 0 ? "@" + peer.Ip : string.Empty)}";

    private static void Print(TextWriter output, ExplainRequest request, ExplainResponse answer)
    {
        output.WriteLine($"{(answer.Allowed ? "ALLOWED" : "DENIED")}: {Show(request.Source)} -> {Show(request.Destination)} {request.Port}/{Format.Protocol(request.Protocol)}");
        output.WriteLine($"  reason:  {answer.Reason}");
        output.WriteLine($"  egress:  {Verdict(answer.Egress, request.Source)}");
        output.WriteLine($"  ingress: {Verdict(answer.Ingress, request.Destination)}");
    }

    private static string Verdict(DirectionVerdict? verdict, ExplainPeer peer)
    {
        if (verdict is null) return "-";
        // A bare address stands for the endpoint that holds it, if any: the server names that endpoint
        // (as the reason line does, "shop/client (10.10.0.200)"), and only an address no endpoint
        // holds is said to be none.
        if (!verdict.Isolated)
        {
            return peer.Name.Length > 0 ? $"allowed (no policy selects {Show(peer)} in this direction)"
                : verdict.Endpoint.Length > 0 ? $"allowed (no policy selects {verdict.Endpoint} ({peer.Ip}) in this direction)"
                : $"allowed ({peer.Ip} is no endpoint's address: no policy applies to it)";
        }
        var selectedBy = $"selected by {string.Join(", ", verdict.Policies)}";
        return verdict.Allowed
            ? $"allowed by {string.Join(", ", verdict.AllowedBy.Select(r => $"{r.Policy} rule {r.Rule}"))} ({selectedBy})"
            : $"denied: no rule of the selecting policies matches ({selectedBy})";
    }
}
