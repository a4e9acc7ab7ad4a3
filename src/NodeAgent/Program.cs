using ControlPlane.Contracts.Client;
using ControlPlane.Contracts.Hosting;
using ControlPlane.NodeAgent;
using ControlPlane.NodeAgent.Lease;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Args = args, ContentRootPath = AppContext.BaseDirectory });
ProgramDefaults.Apply(builder, "nodeagent.json");
var options = builder.Configuration.GetSection("Agent").Get<AgentOptions>() ?? new AgentOptions();
if (options.Validate() is { Count: > 0 } errors)
{
    Console.Error.WriteLine("Invalid configuration:\n  " + string.Join("\n  ", errors));
    return 2;
}
builder.Services.AddSingleton(options);
builder.Services.AddSingleton(_ => new ControlPlaneClient(new Uri(options.ControlPlane)));
builder.Services.AddHostedService<NodeLease>();
await builder.Build().RunAsync();
return 0;
