using ControlPlane.Contracts.Client;
using ControlPlane.Contracts.Grpc;
using ControlPlane.Contracts.Hosting;
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

var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
ProgramDefaults.Apply(builder, "nodeagent.json");
var options = builder.Configuration.GetSection("Agent").Get<AgentOptions>() ?? new AgentOptions();
if (options.Validate() is { Count: > 0 } errors)
{
    Console.Error.WriteLine("Invalid configuration:\n  " + string.Join("\n  ", errors));
    return 2;
}
Directory.CreateDirectory(Path.GetDirectoryName(options.AttachSocket)!);
File.Delete(options.AttachSocket);
builder.WebHost.ConfigureKestrel(k => k.ListenUnixSocket(options.AttachSocket, o => o.Protocols = HttpProtocols.Http2));
builder.Services.AddSingleton(options);
builder.Services.AddSingleton(_ => options.ControlPlane.StartsWith("unix:", StringComparison.Ordinal)
    ? new ControlPlaneClient(GrpcClient.ForUnixSocket(options.ControlPlane["unix:".Length..]))
    : new ControlPlaneClient(new Uri(options.ControlPlane)));
builder.Services.AddSingleton<GrpcServer>();
builder.Services.AddSingleton<PendingAttachments>();
builder.Services.AddSingleton<WatchSync>();
builder.Services.AddHostedService(s => s.GetRequiredService<WatchSync>());
builder.Services.AddSingleton<Reconciler>();
builder.Services.AddHostedService(s => s.GetRequiredService<Reconciler>());
builder.Services.AddSingleton<TableWorker>();
builder.Services.AddHostedService(s => s.GetRequiredService<TableWorker>());
builder.Services.AddSingleton<NodeLease>();
builder.Services.AddHostedService(s => s.GetRequiredService<NodeLease>());

var app = builder.Build();
var server = app.Services.GetRequiredService<GrpcServer>();
new AttachApi(app.Services.GetRequiredService<ControlPlaneClient>(), options, app.Services.GetRequiredService<PendingAttachments>(),
    app.Services.GetRequiredService<NodeLease>().Registered).Map(server);
app.Use(async (context, next) =>
{
    if (GrpcServer.IsGrpcRequest(context.Request)) await server.HandleAsync(context);
    else await next(context);
});
await app.RunAsync();
return 0;
