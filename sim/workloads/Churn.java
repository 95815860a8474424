// Churn.java, run as: java -Xmx160m -XX:+UseG1GC Churn 60 30 (live MiB, garbage MiB/s)
public class Churn {
  public static void main(String[] args) throws Exception {
    int liveMib = Integer.parseInt(args[0]), rateMib = Integer.parseInt(args[1]);
    byte[][] live = new byte[liveMib * 4][];
    java.util.Random r = new java.util.Random(42);
    long sink = 0;
    while (true) {
      long start = System.nanoTime();
      for (int i = 0; i < rateMib * 4; i++) {
        byte[] b = new byte[256 << 10];
        for (int j = 0; j < b.length; j += 4096) b[j] = (byte) i;
        if (r.nextInt(8) == 0) live[r.nextInt(live.length)] = b;
        sink += b[0];
      }
      long spent = (System.nanoTime() - start) / 1000000;
      if (spent < 1000) Thread.sleep(1000 - spent);
      if (sink == 42) System.out.println(sink);
    }
  }
}