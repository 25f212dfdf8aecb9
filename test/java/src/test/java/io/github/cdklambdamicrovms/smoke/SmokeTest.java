package io.github.cdklambdamicrovms.smoke;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.cdklambdamicrovms.FleetUpdatePolicy;
import io.github.cdklambdamicrovms.HookOptions;
import io.github.cdklambdamicrovms.IMicroVmFleet;
import io.github.cdklambdamicrovms.IMicroVmImage;
import io.github.cdklambdamicrovms.IMicroVmImageVersion;
import io.github.cdklambdamicrovms.INetworkConnector;
import io.github.cdklambdamicrovms.ManagedNetworkConnector;
import io.github.cdklambdamicrovms.MicroVmArchitecture;
import io.github.cdklambdamicrovms.MicroVmCode;
import io.github.cdklambdamicrovms.MicroVmFleet;
import io.github.cdklambdamicrovms.MicroVmFleetAttributes;
import io.github.cdklambdamicrovms.MicroVmHooks;
import io.github.cdklambdamicrovms.MicroVmIdlePolicy;
import io.github.cdklambdamicrovms.MicroVmImage;
import io.github.cdklambdamicrovms.MicroVmImageVersion;
import io.github.cdklambdamicrovms.MicroVmImageVersionAttributes;
import io.github.cdklambdamicrovms.MicroVmImageVersionStatus;
import io.github.cdklambdamicrovms.NetworkConnector;
import io.github.cdklambdamicrovms.RollingUpdateOptions;
import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import javax.tools.JavaCompiler;
import javax.tools.ToolProvider;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import software.amazon.awscdk.App;
import software.amazon.awscdk.AppProps;
import software.amazon.awscdk.Duration;
import software.amazon.awscdk.Environment;
import software.amazon.awscdk.RemovalPolicy;
import software.amazon.awscdk.Size;
import software.amazon.awscdk.Stack;
import software.amazon.awscdk.StackProps;
import software.amazon.awscdk.Tags;
import software.amazon.awscdk.assertions.Match;
import software.amazon.awscdk.assertions.Template;
import software.amazon.awscdk.cxapi.CloudAssembly;
import software.amazon.awscdk.services.dynamodb.Table;
import software.amazon.awscdk.services.ec2.Port;
import software.amazon.awscdk.services.ec2.SubnetSelection;
import software.amazon.awscdk.services.ec2.SubnetType;
import software.amazon.awscdk.services.ec2.Vpc;
import software.amazon.awscdk.services.iam.AccountRootPrincipal;
import software.amazon.awscdk.services.iam.Role;
import software.amazon.awscdk.services.iam.ServicePrincipal;

/**
 * Smoke test of the jar built by {@code npx projen package:java}: every construct used from Java,
 * synthesized, and asserted with aws-cdk-lib's assertions. Proves the jsii bindings load and that
 * the handler bundles shipped inside the jar are found at synth time.
 */
class SmokeTest {
  private static final String IMAGE_DIR = Paths.get("src", "test", "resources", "image").toAbsolutePath().toString();

  private static Template template;
  private static Path assemblyDir;

  @BeforeAll
  static void synth() throws IOException {
    Path outdir = Files.createTempDirectory("java-smoke-");
    App app = new App(AppProps.builder().outdir(outdir.toString()).build());
    Stack stack = new Stack(app, "JavaSmoke", StackProps.builder()
        .env(Environment.builder().account("111111111111").region("us-east-1").build())
        .build());

    Role runner = Role.Builder.create(stack, "Runner").assumedBy(new AccountRootPrincipal()).build();
    Role operator = Role.Builder.create(stack, "Operator").assumedBy(new AccountRootPrincipal()).build();
    Role executionRole = Role.Builder.create(stack, "ExecutionRole")
        .assumedBy(new ServicePrincipal("lambda.amazonaws.com"))
        .build();

    // A network connector in a VPC: MicroVMs reach the VPC (HTTPS out) through it.
    Vpc vpc = Vpc.Builder.create(stack, "Vpc").maxAzs(2).build();
    NetworkConnector connector = NetworkConnector.Builder.create(stack, "Connector")
        .vpc(vpc)
        .vpcSubnets(SubnetSelection.builder().subnetType(SubnetType.PRIVATE_WITH_EGRESS).build())
        .networkConnectorName("java-smoke-egress")
        .tags(Map.of("team", "java"))
        .build();
    connector.getConnections().allowToAnyIpv4(Port.tcp(443), "HTTPS out");
    connector.grantPass(runner);

    // An image from an asset directory.
    MicroVmImage image = MicroVmImage.Builder.create(stack, "Image")
        .code(MicroVmCode.fromAsset(IMAGE_DIR))
        .imageName("java-smoke-image")
        .description("from Java")
        .memory(Size.gibibytes(4))
        .architecture(MicroVmArchitecture.ARM_64)
        .environment(Map.of("GREETING", "hello"))
        .hooks(MicroVmHooks.builder()
            .port(9000)
            .ready(HookOptions.builder().timeout(Duration.seconds(20)).build())
            .build())
        .egressConnectors(List.of(connector))
        .keepVersions(5)
        .buildTimeout(Duration.minutes(30))
        .build();
    image.addEnvironment("STAGE", "smoke");
    Tags.of(image).add("team", "java");
    image.grantRun(runner, executionRole);

    // A pinned version, and the version the current deploy built.
    MicroVmImageVersion stable = MicroVmImageVersion.Builder.create(stack, "Stable")
        .image(image)
        .imageVersion("3.0")
        .status(MicroVmImageVersionStatus.ACTIVE)
        .removalPolicy(RemovalPolicy.RETAIN)
        .build();
    stable.grantRun(runner, executionRole);
    image.getCurrentVersion().grantRun(runner);

    // A fleet from the pinned version, with grants.
    MicroVmFleet fleet = MicroVmFleet.Builder.create(stack, "Fleet")
        .image(image)
        .version(stable)
        .desiredCount(2)
        .executionRole(executionRole)
        .ingress(List.of(ManagedNetworkConnector.SHELL_INGRESS))
        .egressConnectors(List.of(connector))
        .idlePolicy(MicroVmIdlePolicy.builder()
            .suspendAfterIdle(Duration.minutes(5))
            .terminateAfterSuspended(Duration.hours(1))
            .build())
        .maximumDuration(Duration.hours(2))
        .updatePolicy(FleetUpdatePolicy.rolling(RollingUpdateOptions.builder().batchSize(1).build()))
        .launchRate(2)
        .build();
    fleet.grantConnect(operator);
    fleet.grantShell(operator);
    fleet.grantManage(operator);

    CloudAssembly assembly = app.synth();
    assemblyDir = Paths.get(assembly.getDirectory());
    template = Template.fromStack(stack);
  }

  @Test
  @SuppressWarnings("unchecked")
  void imageResourceAndProperties() throws IOException {
    template.resourceCountIs("Custom::LambdaMicroVmImage", 1);
    template.hasResourceProperties("Custom::LambdaMicroVmImage", Map.ofEntries(
        Map.entry("Name", "java-smoke-image"),
        Map.entry("Description", "from Java"),
        Map.entry("MemoryMiB", "4096"),
        Map.entry("Architecture", "ARM_64"),
        // Literal environment values are staged as an asset object, not written into the template
        // (README "What is in the template").
        Map.entry("Environment", Match.absent()),
        Map.entry("StagedProperties", Map.of("Bucket", Match.anyValue(), "Key", Match.stringLikeRegexp("^[0-9a-f]{64}\\.json$"))),
        Map.entry("Hooks", Map.of("Port", "9000", "Ready", Map.of("TimeoutSeconds", "20"))),
        Map.entry("EgressConnectors", List.of(getAtt("^Connector", "NetworkConnectorArn"))),
        Map.entry("BuildTimeoutSeconds", "1800"),
        Map.entry("Tags", Map.of("team", "java")),
        Map.entry("CodeUri", Match.anyValue()),
        Map.entry("BuildRoleArn", Match.anyValue()),
        Map.entry("ServiceToken", Match.anyValue())));
    Map<String, Object> image = template.findResources("Custom::LambdaMicroVmImage").values().iterator().next();
    Map<String, Object> staged = (Map<String, Object>) ((Map<String, Object>) image.get("Properties")).get("StagedProperties");
    assertEquals("{\"Environment\":{\"GREETING\":\"hello\",\"STAGE\":\"smoke\"}}",
        Files.readString(assemblyDir.resolve("asset." + staged.get("Key"))));
  }

  @Test
  void networkConnectorInTheVpc() {
    template.resourceCountIs("Custom::LambdaNetworkConnector", 1);
    template.hasResourceProperties("Custom::LambdaNetworkConnector", Map.of(
        "Name", "java-smoke-egress",
        "SubnetIds", List.of(
            Map.of("Ref", Match.stringLikeRegexp("^VpcPrivateSubnet1")),
            Map.of("Ref", Match.stringLikeRegexp("^VpcPrivateSubnet2"))),
        "SecurityGroupIds", List.of(getAtt("^Connector", "GroupId")),
        "Tags", Map.of("team", "java")));
    template.hasResourceProperties("AWS::EC2::SecurityGroup", Map.of(
        "SecurityGroupEgress", Match.arrayWith(List.of(Match.objectLike(Map.of(
            "CidrIp", "0.0.0.0/0", "FromPort", 443, "ToPort", 443))))));
  }

  @Test
  void imageVersions() {
    template.hasResourceProperties("Custom::LambdaMicroVmImageVersion", Map.of(
        "ImageArn", getAtt("^Image", "ImageArn"),
        "ImageVersion", "3.0",
        "Status", "ACTIVE",
        "RemovalPolicy", "retain"));
    // image.getCurrentVersion(): the version the deploy built, pinned while current.
    template.hasResourceProperties("Custom::LambdaMicroVmImageVersion", Map.of(
        "ImageVersion", getAtt("^Image", "ImageVersion")));
  }

  @Test
  @SuppressWarnings("unchecked")
  void fleetResourceAndProperties() {
    template.resourceCountIs("Custom::LambdaMicroVmFleet", 1);
    template.hasResourceProperties("Custom::LambdaMicroVmFleet", Map.ofEntries(
        Map.entry("ImageArn", getAtt("^Image", "ImageArn")),
        Map.entry("ImageVersion", getAtt("^Stable", "ImageVersion")),
        Map.entry("DesiredCount", "2"),
        Map.entry("ExecutionRoleArn", getAtt("^ExecutionRole", "Arn")),
        Map.entry("IngressConnectors", List.of(Match.anyValue())),
        Map.entry("EgressConnectors", List.of(getAtt("^Connector", "NetworkConnectorArn"))),
        Map.entry("IdlePolicy", Map.of("MaxIdleSeconds", "300", "SuspendedSeconds", "3600", "AutoResume", "true")),
        Map.entry("MaximumDurationSeconds", "7200"),
        Map.entry("UpdatePolicy", "ROLLING"),
        Map.entry("BatchSize", "1"),
        Map.entry("LaunchRate", "2"),
        Map.entry("TableName", Map.of("Ref", Match.stringLikeRegexp("^cdklambdamicrovmsProviderInventory")))));
    template.resourceCountIs("AWS::DynamoDB::Table", 1);
    Map<String, Object> fleet = template.findResources("Custom::LambdaMicroVmFleet").values().iterator().next();
    String ingress = String.valueOf(((Map<String, Object>) fleet.get("Properties")).get("IngressConnectors"));
    // The AWS-managed SHELL_INGRESS connector's ARN (account `aws`), joined from the partition and Region.
    assertTrue(Pattern.compile(":lambda:us-east-1:aws:network-connector:[^,\\]]*SHELL_INGRESS").matcher(ingress).find(), ingress);
  }

  @Test
  void fleetGrants() {
    List<Object> actions = new ArrayList<>();
    for (Map<String, Object> s : statementsOfRole("Operator")) {
      actions.addAll(asList(s.get("Action")));
    }
    for (String action : List.of("lambda:CreateMicrovmAuthToken", "lambda:CreateMicrovmShellAuthToken",
        "lambda:GetMicrovm", "lambda:ListMicrovms", "lambda:SuspendMicrovm", "lambda:ResumeMicrovm",
        "lambda:TerminateMicrovm", "dynamodb:Query")) {
      assertTrue(actions.contains(action), action + " not granted to the operator: " + actions);
    }
  }

  @Test
  void imageGrantRun() {
    List<Map<String, Object>> statements = statementsOfRole("Runner");
    List<Object> actions = new ArrayList<>();
    for (Map<String, Object> s : statements) {
      actions.addAll(asList(s.get("Action")));
    }
    assertTrue(actions.contains("lambda:RunMicrovm"), actions::toString);
    assertTrue(actions.contains("lambda:PassNetworkConnector"), actions::toString);
    List<Map<String, Object>> passRole = statements.stream()
        .filter(s -> asList(s.get("Action")).contains("iam:PassRole"))
        .toList();
    assertEquals(1, passRole.size());
    assertEquals(Map.of("StringEquals", Map.of("iam:PassedToService", "lambda.amazonaws.com")), passRole.get(0).get("Condition"));
  }

  @Test
  @SuppressWarnings("unchecked")
  void handlerBundlesAreFoundInTheJar() throws IOException {
    Map<String, Map<String, Object>> functions = template.findResources("AWS::Lambda::Function",
        Map.of("Properties", Map.of("Handler", "index.onEvent")));
    // One provider per stack for all four resource types: one onEvent function dispatching on the type.
    assertEquals(1, functions.size(), "provider onEvent functions: " + functions.keySet());
    for (Map.Entry<String, Map<String, Object>> fn : functions.entrySet()) {
      Map<String, Object> props = (Map<String, Object>) fn.getValue().get("Properties");
      String key = (String) ((Map<String, Object>) props.get("Code")).get("S3Key");
      Path bundle = assemblyDir.resolve("asset." + key.split("\\.")[0]).resolve("index.js");
      assertTrue(Files.isRegularFile(bundle), fn.getKey() + ": handler bundle " + bundle + " was not staged");
      String text = Files.readString(bundle);
      // The bundle includes the MicroVMs SDK client (Lambda's built-in SDK predates the service).
      assertTrue(text.length() > 50_000, fn.getKey() + ": handler bundle is only " + text.length() + " bytes");
      assertTrue(text.contains("onEvent") && text.contains("isComplete"));
    }
  }

  @Test
  void imageCodeAssetIsStaged() throws IOException {
    try (var dirs = Files.list(assemblyDir)) {
      long withDockerfile = dirs.filter(d -> Files.isRegularFile(d.resolve("Dockerfile"))).count();
      assertEquals(1, withDockerfile);
    }
  }

  /** Each construct imported by name, ARN or attributes, with grants on the imports. */
  @Test
  void importsAndTheirGrants() {
    Stack stack = new Stack(new App(), "Imports", StackProps.builder()
        .env(Environment.builder().account("111111111111").region("us-east-1").build())
        .build());
    Role consumer = Role.Builder.create(stack, "Consumer").assumedBy(new AccountRootPrincipal()).build();
    IMicroVmImage image = MicroVmImage.fromImageName(stack, "Image", "batch");
    IMicroVmImageVersion version = MicroVmImageVersion.fromVersionAttributes(stack, "Version",
        MicroVmImageVersionAttributes.builder().image(image).imageVersion("7.0").build());
    INetworkConnector connector = NetworkConnector.fromNetworkConnectorArn(stack, "Connector",
        "arn:aws:lambda:us-east-1:111111111111:network-connector:nc-0123abcd");
    IMicroVmFleet fleet = MicroVmFleet.fromFleetAttributes(stack, "Fleet", MicroVmFleetAttributes.builder()
        .fleetId("batch-fleet")
        .image(image)
        .inventoryTable(Table.fromTableName(stack, "Inventory", "batch-inventory"))
        .build());
    assertEquals("7.0", version.getImageVersion());
    assertEquals("nc-0123abcd", connector.getNetworkConnectorId());
    version.grantRun(consumer);
    connector.grantPass(consumer);
    fleet.grantRead(consumer);

    Template imports = Template.fromStack(stack);
    Object imageArn = Map.of("Fn::Join", List.of("",
        List.of("arn:", Map.of("Ref", "AWS::Partition"), ":lambda:us-east-1:111111111111:microvm-image:batch")));
    Object runStatement = Match.objectLike(Map.of(
        "Action", "lambda:RunMicrovm",
        "Resource", Match.arrayWith(List.of(imageArn))));
    Object passStatement = Match.objectLike(Map.of(
        "Action", "lambda:PassNetworkConnector",
        "Resource", Match.arrayWith(List.of("arn:aws:lambda:us-east-1:111111111111:network-connector:nc-0123abcd"))));
    imports.hasResourceProperties("AWS::IAM::Policy", Map.of(
        "PolicyDocument", Map.of("Statement", Match.arrayWith(List.of(runStatement, passStatement)))));
    String policies = String.valueOf(imports.findResources("AWS::IAM::Policy"));
    assertTrue(policies.contains(":table/batch-inventory"), policies);
  }

  @Test
  void validationErrorsReachJava() {
    Stack stack = new Stack(new App(), "Invalid");
    RuntimeException e = assertThrows(RuntimeException.class, () -> MicroVmImage.Builder.create(stack, "Image")
        .code(MicroVmCode.fromAsset(IMAGE_DIR))
        .memory(Size.gibibytes(3))
        .build());
    assertTrue(e.getMessage().contains("memory"), e.getMessage());
  }

  /** The README's Java quick start, compiled and run as a CDK app from a directory with an image/. */
  @Test
  void readmeQuickStartSynthesizes() throws Exception {
    String readme = Files.readString(Paths.get("..", "..", "README.md"));
    String section = readme.substring(readme.indexOf("\n### Java\n"));
    Matcher m = Pattern.compile("```java\n(.*?)```", Pattern.DOTALL).matcher(section);
    assertTrue(m.find(), "no java block under ### Java in README.md");
    Path workdir = Files.createTempDirectory("java-quickstart-");
    Files.writeString(workdir.resolve("MicroVmsApp.java"), m.group(1));
    Path image = Files.createDirectories(workdir.resolve("image"));
    try (Stream<Path> files = Files.list(Paths.get(IMAGE_DIR))) {
      for (Path f : files.toList()) {
        Files.copy(f, image.resolve(f.getFileName()));
      }
    }

    // The test classpath has the library, aws-cdk-lib and constructs.
    String classpath = System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
    JavaCompiler javac = ToolProvider.getSystemJavaCompiler();
    int rc = javac.run(null, null, null, "-cp", classpath, "-d", workdir.toString(), workdir.resolve("MicroVmsApp.java").toString());
    assertEquals(0, rc, "the README's Java quick start does not compile");

    Path outdir = workdir.resolve("cdk.out");
    ProcessBuilder app = new ProcessBuilder(
        Paths.get(System.getProperty("java.home"), "bin", "java").toString(),
        "-cp", workdir + File.pathSeparator + classpath, "MicroVmsApp")
        .directory(workdir.toFile())
        .inheritIO();
    app.environment().put("CDK_OUTDIR", outdir.toString());
    Process p = app.start();
    assertTrue(p.waitFor(5, TimeUnit.MINUTES), "the quick start app did not finish in 5 minutes");
    assertEquals(0, p.exitValue(), "the quick start app failed");

    Template quickStart = Template.fromString(Files.readString(outdir.resolve("MicroVms.template.json")));
    quickStart.resourceCountIs("Custom::LambdaMicroVmImage", 1);
    quickStart.hasResourceProperties("AWS::IAM::Policy", Map.of("PolicyDocument", Map.of(
        "Statement", Match.arrayWith(List.of(Match.objectLike(Map.of("Action", "lambda:RunMicrovm")))))));
  }

  private static Map<String, Object> getAtt(String logicalIdPattern, String attribute) {
    return Map.of("Fn::GetAtt", List.of(Match.stringLikeRegexp(logicalIdPattern), attribute));
  }

  @SuppressWarnings("unchecked")
  private static List<Object> asList(Object value) {
    return value instanceof List ? (List<Object>) value : List.of(value);
  }

  @SuppressWarnings("unchecked")
  private static List<Map<String, Object>> statementsOfRole(String rolePrefix) {
    List<Map<String, Object>> statements = new ArrayList<>();
    for (Map<String, Object> policy : template.findResources("AWS::IAM::Policy").values()) {
      Map<String, Object> props = (Map<String, Object>) policy.get("Properties");
      List<Map<String, Object>> roles = (List<Map<String, Object>>) props.getOrDefault("Roles", List.of());
      boolean attached = roles.stream().anyMatch(r -> String.valueOf(r.get("Ref")).startsWith(rolePrefix));
      if (attached) {
        Map<String, Object> doc = (Map<String, Object>) props.get("PolicyDocument");
        statements.addAll((List<Map<String, Object>>) doc.get("Statement"));
      }
    }
    assertFalse(statements.isEmpty(), "no policy attached to role " + rolePrefix);
    return statements;
  }
}
