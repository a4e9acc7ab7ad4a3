using ControlPlane.Contracts.Client;
using ControlPlane.Contracts.Hosting;
using ControlPlane.Observability;
using ControlPlane.NodeAgent;
using ControlPlane.NodeAgent.Attach;
using ControlPlane.NodeAgent.Dataplane;
using ControlPlane.NodeAgent.Lease;
using ControlPlane.NodeAgent.Table;
using ControlPlane.NodeAgent.Sync;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

const string Usage = """
    Usage: ControlPlane.NodeAgent --Agent:UnderlayIp=ADDRESS [--Section:Key=value ...]

    Registers this host as a node of the control plane, keeps its lease, and programs the host's
    network namespace to match: the VXLAN overlay (netlink), service virtual IPs and network
    policy (nftables table "inet controlplane"). Serves the attach API on a unix socket.
    It changes the network of the namespace it runs in: run it inside a namespace of its own to
    try it out (see README). Needs CAP_NET_ADMIN.

    Common settings:
      --Agent:ControlPlane=http://127.0.0.1:7070   the silo (or unix:/path)
      --Agent:NodeName=NAME                        default: the host name
      --Agent:UnderlayIp=ADDRESS                   where other nodes send VXLAN traffic (required)
      --Agent:AttachSocket=/run/controlplane/agent.sock
      --Agent:Ca=ca.crt --Agent:Certificate=NODE.crt --Agent:Key=NODE.key   mutual TLS to https:// silos
      --Metrics:Listen=ADDRESS:PORT                Prometheus text on /metrics (default: off)
    """;

if (ProgramInfo.EarlyExit(args, "ControlPlane.NodeAgent", Usage, "Agent", "Metrics") is { } exit)
{
    return exit;
}
var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
ProgramDefaults.Apply(builder, "nodeagent.json");
AgentOptions options;
try
{
    options = builder.Configuration.GetSection("Agent").Read<AgentOptions>(everyKey: true);
}
catch (InvalidOperationException e)
{
    Console.Error.WriteLine($"ControlPlane.NodeAgent: {ProgramInfo.Reason(e)}");
    return 2;
}
if (options.Validate() is { Count: > 0 } errors)
{
    Console.Error.WriteLine("ControlPlane.NodeAgent: Invalid configuration:\n  " + string.Join("\n  ", errors));
    return 2;
}
try
{
    builder.Configuration.GetSection("Metrics").RequireKnownKeys(["Listen"]);
    // Every span and metric of the agent names its node: with many agents, which node's pass was slow.
    builder.Services.AddProgramTelemetry(Telemetry.AgentService, "agent", builder.Configuration["Metrics:Listen"],
        [new("controlplane.node", options.NodeName)]);
}
catch (InvalidConfigurationException e)
{
    Console.Error.WriteLine($"ControlPlane.NodeAgent: {e.Message}");
    return 2;
}
catch (ListenAddressException e)
{
    Console.Error.WriteLine($"ControlPlane.NodeAgent: {e.Message}");
    return 1;
}
Directory.CreateDirectory(Path.GetDirectoryName(options.AttachSocket)!);
try
{
    ListenAddress.ClaimUnixSocket("Agent:AttachSocket", options.AttachSocket);
}
catch (ListenAddressException e)
{
    Console.Error.WriteLine($"ControlPlane.NodeAgent: {e.Message}");
    return 1;
}
builder.WebHost.ConfigureKestrel(k => k.ListenUnixSocket(options.AttachSocket, o => o.Protocols = HttpProtocols.Http2));
builder.Services.AddSingleton(options);
builder.Services.AddSingleton(_ => new ControlPlaneClient(options.ControlPlane, tls: options.Tls()));
builder.Services.AddSingleton<PendingAttachments>();
builder.Services.AddSingleton(TimeProvider.System);
builder.Services.AddSingleton<OrphanedAttachments>();
builder.Services.AddSingleton<WatchSync>();
builder.Services.AddHostedService(s => s.GetRequiredService<WatchSync>());
builder.Services.AddSingleton<Reconciler>();
builder.Services.AddHostedService(s => s.GetRequiredService<Reconciler>());
builder.Services.AddSingleton<TableWorker>();
builder.Services.AddHostedService(s => s.GetRequiredService<TableWorker>());
builder.Services.AddSingleton<NodeLease>();
builder.Services.AddHostedService(s => s.GetRequiredService<NodeLease>());
builder.Services.AddHostedService<ProgrammedReporter>();
builder.Services.AddGrpc(grpc => grpc.Interceptors.Add<ControlPlane.NodeAgent.Attach.ClassifiedErrors>());
builder.Services.AddSingleton<ControlPlane.NodeAgent.Telemetry.AgentTelemetry>();

var app = builder.Build();
// /healthz says ready only once this node's kernel has what the control plane says, as Status does.
var (lease, sync) = (app.Services.GetRequiredService<NodeLease>(), app.Services.GetRequiredService<WatchSync>());
app.Services.GetRequiredService<WatchHealth>().Readiness = () => AgentReadiness.NotReady(options, lease, sync);
app.MapGrpcService<AttachApi>();
await app.RunAsync();
return 0;
