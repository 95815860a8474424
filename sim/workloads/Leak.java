// Leak.java, run as: java -Xmx1g -XX:+UseG1GC Leak 1
public class Leak {
  public static void main(String[] args) throws Exception {
    int mibPerSecond = Integer.parseInt(args[0]);
    java.util.ArrayList<byte[]> kept = new java.util.ArrayList<>();
    while (true) {
      for (int i = 0; i < mibPerSecond; i++) {
        byte[] b = new byte[1 << 20];
        for (int j = 0; j < b.length; j += 4096) b[j] = 1;
        kept.add(b);
      }
      for (int i = 0; i < 8; i++) { byte[] g = new byte[256 << 10]; g[0] = 1; }
      Thread.sleep(1000);
    }
  }
}
