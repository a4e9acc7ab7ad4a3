using ControlPlane.Contracts.Client;
using ControlPlane.NodeAgent;
using ControlPlane.NodeAgent.Lease;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Args = args, ContentRootPath = AppContext.BaseDirectory });
// Own file name: several programs' outputs may share a directory (tests, packages).
builder.Configuration.Sources.Insert(0, new Microsoft.Extensions.Configuration.Json.JsonConfigurationSource { Path = "nodeagent.json", Optional = true, ReloadOnChange = false });
builder.Configuration.AddEnvironmentVariables("CONTROLPLANE_");
var options = builder.Configuration.GetSection("Agent").Get<AgentOptions>() ?? new AgentOptions();
if (options.Validate() is { Count: > 0 } errors)
{
    Console.Error.WriteLine("Invalid configuration:\n  " + string.Join("\n  ", errors));
    return 2;
}
builder.Logging.AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss.fff "; });
builder.Services.AddSingleton(options);
builder.Services.AddSingleton(_ => new ControlPlaneClient(new Uri(options.ControlPlane)));
builder.Services.AddHostedService<NodeLease>();
await builder.Build().RunAsync();
return 0;
