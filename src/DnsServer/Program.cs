using ControlPlane.Contracts.Hosting;
using ControlPlane.Dns;
using Microsoft.Extensions.Hosting;

var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Args = args, ContentRootPath = AppContext.BaseDirectory });
ProgramDefaults.Apply(builder, "dnsserver.json");
try
{
    builder.Services.AddClusterDns(builder.Configuration.GetSection("Dns"));
}
catch (Exception e) when (e is InvalidOperationException or FormatException or IOException)
{
    Console.Error.WriteLine(e.Message);
    return 2;
}
await builder.Build().RunAsync();
return 0;
