using ControlPlane.Contracts.Hosting;
using ControlPlane.Observability;
using ControlPlane.Dns;
using Microsoft.Extensions.Hosting;

const string Usage = """
    Usage: ControlPlane.DnsServer [--Section:Key=value ...]

    The cluster DNS server: answers the Kubernetes DNS schema for the cluster zone from the
    control plane's Watch stream, over UDP and TCP.

    Common settings:
      --Dns:Listen=127.0.0.1:53                   address:port to answer on
      --Dns:ControlPlane=http://127.0.0.1:7070    the silo (or unix:/path)
      --Dns:Zone=cluster.local                    the cluster domain
      --Dns:ClusterSetZone=clusterset.local       the ClusterSet domain (imports of exported services; empty: off)
      --Dns:Forwarders:0=ADDRESS:53               where names outside our zones go (reverse names too)
      --Dns:ServiceRanges:0=10.96.0.0/16          the control plane's service ranges (reverse zones)
      --Dns:PodRecords=Verified                   pod records: Verified (an endpoint holds the address),
                                                  Insecure (any address, CoreDNS's "pods insecure") or Disabled
      --Dns:Ca=ca.crt --Dns:Certificate=dns.crt --Dns:Key=dns.key   mutual TLS to https:// silos
      --Dns:TraceQueries=true                     a span per query (OTLP; default: off)
      --Metrics:Listen=ADDRESS:PORT               Prometheus text on /metrics (default: off)
    """;

if (ProgramInfo.EarlyExit(args, "ControlPlane.DnsServer", Usage, "Dns", "Metrics") is { } exit)
{
    return exit;
}

var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Args = args, ContentRootPath = AppContext.BaseDirectory });
ProgramDefaults.Apply(builder, "dnsserver.json");
try
{
    builder.Services.AddClusterDns(builder.Configuration.GetSection("Dns"));
    builder.Configuration.GetSection("Metrics").RequireKnownKeys(["Listen"]);
    builder.Services.AddProgramTelemetry(Telemetry.DnsService, "dns", builder.Configuration["Metrics:Listen"]);
}
catch (ListenAddressException e)
{
    Console.Error.WriteLine($"ControlPlane.DnsServer: {e.Message}");
    return 1;
}
catch (Exception e) when (e is InvalidOperationException or FormatException or IOException)
{
    Console.Error.WriteLine($"ControlPlane.DnsServer: {ProgramInfo.Reason(e)}");
    return 2;
}
try
{
    await builder.Build().RunAsync();
    return 0;
}
catch (ListenAddressException e)
{
    Console.Error.WriteLine($"ControlPlane.DnsServer: {e.Message}");
    return 1;
}
