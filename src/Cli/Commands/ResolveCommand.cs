using System.CommandLine;
using System.Net;
using DnsClient;

namespace ControlPlane.Cli.Commands;

/// <summary>
/// <c>netctl resolve NAME [TYPE]</c>: asks the cluster DNS (DnsClient, --dns or NETCTL_DNS or the
/// config file's dns:, default 127.0.0.1:1053) and prints the answer as records. An IP address as
/// NAME asks for its PTR record. NXDOMAIN, SERVFAIL and REFUSED exit 1; an empty answer (NODATA) is
/// a successful lookup.
/// </summary>
internal static class ResolveCommand
{
    public static Command Create(GlobalOptions global, Output.Terminal terminal)
    {
        var name = new Argument<string>("name") { Description = "Name to resolve, e.g. web.shop.svc.cluster.local, or an IP address (PTR)" };
        var type = new Argument<string?>("type") { Description = "Record type: A (default), AAAA, SRV, PTR, CNAME, TXT, SOA, NS, ANY, or another type's name (MX, CAA, ...)", Arity = ArgumentArity.ZeroOrOne };
        type.CompletionSources.Add("A", "AAAA", "SRV", "PTR", "CNAME", "TXT", "SOA", "NS", "ANY");
        var dns = new Option<string?>("--dns") { Description = "DNS server HOST:PORT (default: NETCTL_DNS, the config file, 127.0.0.1:1053)" };
        var tcp = new Option<bool>("--tcp") { Description = "Ask over TCP instead of UDP" };
        var command = new Command("resolve", "Look a name up in the cluster DNS") { name, type, dns, tcp };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var query = parse.GetValue(name)!;
            var typeText = parse.GetValue(type);
            QueryType queryType;
            if (IPAddress.TryParse(query, out var address))
            {
                if (typeText is not null && !typeText.Equals("PTR", StringComparison.OrdinalIgnoreCase)) throw CliException.Usage($"an IP address is looked up as PTR, not {typeText}");
                query = address.GetArpaName();
                queryType = QueryType.PTR;
            }
            else if (!Enum.TryParse(typeText ?? "A", ignoreCase: true, out queryType) || !Enum.IsDefined(queryType) || int.TryParse(typeText, out _))
            {
                throw CliException.Usage($"'{typeText}' is not a record type's name (A, AAAA, SRV, PTR, CNAME, TXT, SOA, NS, ANY, MX, ...)");
            }
            using var context = global.Context(parse, terminal, parse.GetValue(dns));
            var server = Endpoint(context.Settings.Dns);
            var lookup = new LookupClient(new LookupClientOptions(new NameServer(server))
            {
                UseCache = false,
                Timeout = context.Settings.Timeout < TimeSpan.FromSeconds(5) ? context.Settings.Timeout : TimeSpan.FromSeconds(5),
                Retries = 1,
                UseTcpOnly = parse.GetValue(tcp),
                ThrowDnsErrors = false,
                ContinueOnDnsError = false,
                ContinueOnEmptyResponse = false,
            });
            IDnsQueryResponse response;
            try
            {
                response = await lookup.QueryAsync(query, queryType, QueryClass.IN, cancellationToken);
            }
            catch (DnsResponseException e)
            {
                throw new CliException($"no answer from the DNS server at {server}: {e.Code}");
            }
            var status = response.Header.ResponseCode;
            terminal.Out.WriteLine($";; {server}: status {RcodeName(status)}, {response.Answers.Count} answer(s){(response.Header.HasAuthorityAnswer ? ", authoritative" : string.Empty)}");
            foreach (var record in response.Answers) terminal.Out.WriteLine(record.ToString());
            if (response.Answers.Count == 0)
            {
                foreach (var record in response.Authorities) terminal.Out.WriteLine(";; authority: " + record);
            }
            return status == DnsHeaderResponseCode.NoError ? ExitCodes.Success : ExitCodes.Error;
        });
        return command;
    }

    /// <summary>The rcode as dig prints it.</summary>
    private static string RcodeName(DnsHeaderResponseCode code) => code switch
    {
        DnsHeaderResponseCode.NoError => "NOERROR",
        DnsHeaderResponseCode.FormatError => "FORMERR",
        DnsHeaderResponseCode.ServerFailure => "SERVFAIL",
        DnsHeaderResponseCode.NotExistentDomain => "NXDOMAIN",
        DnsHeaderResponseCode.NotImplemented => "NOTIMP",
        DnsHeaderResponseCode.Refused => "REFUSED",
        _ => code.ToString().ToUpperInvariant(),
    };

    private static IPEndPoint Endpoint(string text)
    {
        if (IPEndPoint.TryParse(text, out var endpoint))
        {
            if (endpoint.Port == 0) endpoint.Port = 53;
            return endpoint;
        }
        throw CliException.Usage($"DNS server '{text}' is not HOST:PORT with an IP address (e.g. 127.0.0.1:1053)");
    }
}
