using ControlPlane.Dns;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Args = args, ContentRootPath = AppContext.BaseDirectory });
// Own file name: several programs' outputs may share a directory (tests, packages).
builder.Configuration.Sources.Insert(0, new Microsoft.Extensions.Configuration.Json.JsonConfigurationSource { Path = "dnsserver.json", Optional = true, ReloadOnChange = false });
builder.Configuration.AddEnvironmentVariables("CONTROLPLANE_");
builder.Logging.AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss.fff "; });
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
