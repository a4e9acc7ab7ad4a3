using System.Diagnostics;
using ControlPlane.Contracts.V1;
using ControlPlane.Grains.Serialization;
using ControlPlane.Serialization.Bench;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Serialization;

// Usage: ControlPlane.Serialization.Bench [iterations]
var iterations = args.Length > 0 ? int.Parse(args[0]) : 200_000;
var services = new ServiceCollection().AddSerializer(builder => builder.AddProtobufMessages()).BuildServiceProvider();
var serializer = services.GetRequiredService<Serializer>();
var copier = services.GetRequiredService<DeepCopier>();

var message = new Endpoint
{
    Metadata = new ObjectMeta { Name = "web-7f9c", Namespace = "shop", Etag = "12345", Uid = Guid.NewGuid().ToString(), CreateTime = Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow), Labels = { ["app"] = "web", ["tier"] = "frontend", ["version"] = "v2" } },
    Spec = new EndpointSpec { Network = "blue", Node = "node-17", Ready = true, Hostname = "web-7f9c", Subdomain = "web", Ports = { new NamedPort { Name = "http", Protocol = Protocol.Tcp, Port = 8080 }, new NamedPort { Name = "metrics", Protocol = Protocol.Tcp, Port = 9090 } } },
    Status = new EndpointStatus { Ips = { "10.20.3.17", "fd00:20::3:17" }, Mac = "02:4a:9c:11:22:33", Ipv4Gateway = "10.20.0.1", Ipv6Gateway = "fd00:20::1", Mtu = 1450, EffectiveReady = true, NodeReady = true },
};
var record = new EndpointRecord(
    new MetaRecord(message.Metadata.Name, message.Metadata.Namespace, new Dictionary<string, string>(message.Metadata.Labels), message.Metadata.Etag, message.Metadata.Uid, message.Metadata.CreateTime.ToDateTimeOffset()),
    message.Spec.Network, message.Spec.Node, [.. message.Spec.Ports.Select(p => new PortRecord(p.Name, (int)p.Protocol, p.Port))],
    message.Spec.Hostname, message.Spec.Subdomain, message.Spec.Ready, [.. message.Status.Ips], message.Status.Mac,
    message.Status.Ipv4Gateway, message.Status.Ipv6Gateway, message.Status.Mtu, message.Status.EffectiveReady, message.Status.NodeReady);

Console.WriteLine($"# serialisation of one endpoint, {iterations:N0} iterations each, {DateTime.UtcNow:u}");
Console.WriteLine("| representation | operation | ns/op | bytes allocated/op | encoded bytes |");
Console.WriteLine("|---|---|---|---|---|");
Measure("protobuf message (ProtobufMessageCodec)", "Orleans round trip (between silos)", () => serializer.Deserialize<Endpoint>(serializer.SerializeToArray(message))!, serializer.SerializeToArray(message).Length);
Measure("[GenerateSerializer] record", "Orleans round trip (between silos)", () => serializer.Deserialize<EndpointRecord>(serializer.SerializeToArray(record))!, serializer.SerializeToArray(record).Length);
Measure("protobuf message (ProtobufMessageCodec)", "argument copy (within a silo)", () => copier.Copy(message), 0);
Measure("protobuf message, deep-copied", "argument copy (within a silo)", () => message.Clone(), 0);
Measure("[GenerateSerializer] record", "argument copy (within a silo)", () => copier.Copy(record), 0);
Measure("protobuf message", "stored state: encode + decode", () => Endpoint.Parser.ParseFrom(message.ToByteArray()), message.CalculateSize());
Measure("[GenerateSerializer] record", "stored state: encode + decode", () => serializer.Deserialize<EndpointRecord>(serializer.SerializeToArray(record))!, serializer.SerializeToArray(record).Length);
Measure("record → protobuf message", "conversion at the API edge (per call)", () => ToMessage(record), 0);

void Measure(string representation, string operation, Func<object> action, int bytes)
{
    for (var i = 0; i < iterations / 10; i++) action();
    GC.Collect();
    var allocated = GC.GetAllocatedBytesForCurrentThread();
    var clock = Stopwatch.StartNew();
    for (var i = 0; i < iterations; i++) action();
    clock.Stop();
    var perOp = (GC.GetAllocatedBytesForCurrentThread() - allocated) / (double)iterations;
    Console.WriteLine($"| {representation} | {operation} | {clock.Elapsed.TotalNanoseconds / iterations:F0} | {perOp:F0} | {(bytes > 0 ? bytes.ToString() : "")} |");
}

static Endpoint ToMessage(EndpointRecord r)
{
    var e = new Endpoint
    {
        Metadata = new ObjectMeta { Name = r.Metadata.Name, Namespace = r.Metadata.Namespace, Etag = r.Metadata.Etag, Uid = r.Metadata.Uid, CreateTime = Timestamp.FromDateTimeOffset(r.Metadata.CreateTime) },
        Spec = new EndpointSpec { Network = r.Network, Node = r.Node, Hostname = r.Hostname, Subdomain = r.Subdomain, Ready = r.Ready },
        Status = new EndpointStatus { Mac = r.Mac, Ipv4Gateway = r.Ipv4Gateway, Ipv6Gateway = r.Ipv6Gateway, Mtu = r.Mtu, EffectiveReady = r.EffectiveReady, NodeReady = r.NodeReady },
    };
    e.Metadata.Labels.Add(r.Metadata.Labels);
    e.Spec.Ports.Add(r.Ports.Select(p => new NamedPort { Name = p.Name, Protocol = (Protocol)p.Protocol, Port = p.Port }));
    e.Status.Ips.Add(r.Ips);
    return e;
}
